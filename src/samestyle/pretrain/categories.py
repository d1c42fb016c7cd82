"""Category recognition from the cross-encoder's [CLS]: a linear probe (multinomial logistic regression).

The encoder stays frozen; ``cls_features`` runs clean (uncorrupted) title + patches through it and
``linear_probe`` fits a scikit-learn logistic regression on train rows, scoring test rows with
``eval.grouping.category_scores`` (ACC, macro-F1). The same probe on any other vectors (e.g. the issue-B
``joint-fused`` space) gives the comparison. A run fine-tuned with the ``category`` task
(``category_task.CategoryTask``) predicts directly: ``head_predictions``.
"""

from __future__ import annotations

import numpy as np
import torch

from samestyle.eval.grouping import category_scores
from samestyle.pretrain.train import Pretrainer


def cls_features(
    model: Pretrainer, tokens: np.ndarray, patches: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """``[N, W]`` float32 [CLS] outputs of clean inputs."""
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(tokens), batch_size):
            t = torch.from_numpy(tokens[s : s + batch_size])
            p = torch.from_numpy(patches[s : s + batch_size].astype(np.float32))
            out.append(model.encoder(t, p).cls)
    return torch.cat(out).numpy()


def head_predictions(model: Pretrainer, cls: np.ndarray) -> dict[str, np.ndarray]:
    """``{"sub": [N], "art": [N]}`` class indices of the run's ``category`` head for ``[CLS]`` outputs
    ``cls [N, W]`` (from ``cls_features``).

    Raises:
        ValueError: the model has no ``category`` task.
    """
    if "category" not in model.tasks:
        raise ValueError("the model has no 'category' head; fine-tune it with tasks = [..., 'category']")
    head = model.tasks["category"].eval()
    with torch.inference_mode():
        logits = head.logits(torch.from_numpy(np.asarray(cls, dtype=np.float32)))  # type: ignore[operator]
    return {level: v.argmax(-1).numpy() for level, v in logits.items()}


def linear_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, c: float = 1.0
) -> dict[str, float]:
    """Standardise, fit multinomial logistic regression on train, return test ``acc`` / ``macro_f1``.

    Macro-F1 is over the labels present in the test rows.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300))
    clf.fit(x_train, y_train)
    return category_scores(y_test, clf.predict(x_test), labels=sorted(set(np.asarray(y_test).tolist())))
