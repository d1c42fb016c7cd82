"""Linear probe: a softmax-regression head trained on embeddings (category recognition)."""

from __future__ import annotations

import numpy as np
import torch


def fit_predict_linear(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    epochs: int = 60,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> np.ndarray:
    """Train multinomial logistic regression (full batch, Adam) and return test predictions (labels)."""
    classes, y_idx = np.unique(y_train, return_inverse=True)
    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.asarray(x_train, np.float32))
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    xt = (xt - mu) / sd
    yt = torch.from_numpy(y_idx.astype(np.int64))
    head = torch.nn.Linear(xt.shape[1], len(classes))
    torch.nn.init.normal_(head.weight, std=0.01, generator=g)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(4096):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(head(xt[idx]), yt[idx]).backward()
            opt.step()
    with torch.no_grad():
        xs = (torch.from_numpy(np.asarray(x_test, np.float32)) - mu) / sd
        pred = head(xs).argmax(1).numpy()
    return np.asarray(classes[pred])
