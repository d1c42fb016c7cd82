"""Tiny synthetic pre-training arrays (the layout of ``pretrain.prepare``)."""

from __future__ import annotations

import numpy as np

from samestyle.pretrain.model import CrossConfig


def tiny_data(n: int = 24, t: int = 6, d: int = 8, vocab: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, t + 1, size=n)
    tokens = np.zeros((n, t), dtype=np.int64)
    for i, k in enumerate(lengths):
        tokens[i, :k] = rng.integers(1, vocab, size=k)
    align = np.where(tokens > 0, rng.normal(size=(n, t)), -np.inf).astype(np.float32)
    return {
        "ids": np.array([f"p{i}" for i in range(n)]),
        "is_train": np.arange(n) < n * 2 // 3,
        "patches": rng.normal(size=(n, 55, d)).astype(np.float16),
        "tokens": tokens,
        "token_table": np.vstack([np.zeros((1, 384)), rng.normal(size=(vocab - 1, 384))]).astype(np.float32),
        "align": align,
        "sub": rng.integers(0, 3, size=n),
        "art": rng.integers(0, 4, size=n),
    }


def tiny_model_config(data: dict[str, np.ndarray]) -> CrossConfig:
    return CrossConfig(
        width=16, layers=1, heads=2, ff=32, dropout=0.0, max_tokens=data["tokens"].shape[1],
        patch_dim=data["patches"].shape[-1], vocab=len(data["token_table"]),
    )  # fmt: skip
