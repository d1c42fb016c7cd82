"""A linear map learned from labelled groups in closed form: shrinkage LDA.

Listings of one product (photos of one grocery item, offers of one SKU) are a group; LDA finds the
directions along which groups differ most relative to how much a group's own members vary, so cosine
similarity after the map separates "same product" from "similar product" better than the backbone's
own space. Used by duplicate detection when labelled groups exist (``samestyle.eval.dedupe``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samestyle.errors import ConfigError


@dataclass
class LDAProjection:
    """``fit`` on rows and their group ids; ``transform`` maps new rows to ``dim`` L2-normalised dimensions.

    ``shrink`` blends the within-group covariance with a scaled identity (0 = none, 1 = all identity), which
    keeps the map stable when there are fewer rows than dimensions.
    """

    dim: int = 64
    shrink: float = 0.1
    mean: np.ndarray | None = None
    weights: np.ndarray | None = None  # [D, dim]

    def fit(self, x: np.ndarray, groups: np.ndarray) -> LDAProjection:
        x = np.asarray(x, np.float64)
        groups = np.asarray(groups)
        labels, inverse = np.unique(groups, return_inverse=True)
        if len(labels) < 2 or len(x) != len(groups):
            raise ConfigError("LDA needs rows from at least two groups and one group id per row")
        self.mean = x.mean(0)
        xc = x - self.mean
        centroids = np.stack([xc[inverse == g].mean(0) for g in range(len(labels))])  # [G, D]
        within = xc - centroids[inverse]
        sw = within.T @ within / len(x)
        sw = (1 - self.shrink) * sw + self.shrink * np.trace(sw) / len(sw) * np.eye(len(sw))
        sb = centroids.T @ centroids / len(labels)
        w, v = np.linalg.eigh(sw)
        whiten = v / np.sqrt(np.maximum(w, 1e-12))  # [D, D]: sw -> identity
        _, bv = np.linalg.eigh(whiten.T @ sb @ whiten)
        dim = min(self.dim, len(labels) - 1, x.shape[1])
        self.weights = whiten @ bv[:, ::-1][:, :dim]
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None or self.weights is None:
            raise ConfigError("LDAProjection.transform before fit")
        y = (np.asarray(x, np.float64) - self.mean) @ self.weights
        return (y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)).astype(np.float32)


__all__ = ["LDAProjection"]
