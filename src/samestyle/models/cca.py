"""A linear joint map fitted in closed form: regularised CCA between image and text features.

The simple baseline the learned joint model must beat: both modalities are whitened and rotated into
their top canonical directions (fitted on training pairs only), then L2-normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return np.asarray((v / np.sqrt(np.maximum(w, 1e-12))) @ v.T)


@dataclass
class CCAMap:
    """``fit`` on paired rows; ``image``/``text`` map new rows into the shared ``dim``-d space."""

    dim: int = 256
    reg: float = 1e-2
    mean_x: np.ndarray | None = None
    mean_y: np.ndarray | None = None
    wx: np.ndarray | None = None
    wy: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> CCAMap:
        """Args: ``x`` ``[N, Dx]`` image features, ``y`` ``[N, Dy]`` text features of the same products."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        self.mean_x, self.mean_y = x.mean(0), y.mean(0)
        xc, yc = x - self.mean_x, y - self.mean_y
        n = len(x) - 1
        cxx = xc.T @ xc / n
        cyy = yc.T @ yc / n
        cxx += self.reg * np.trace(cxx) / len(cxx) * np.eye(len(cxx))
        cyy += self.reg * np.trace(cyy) / len(cyy) * np.eye(len(cyy))
        kx, ky = _inv_sqrt(cxx), _inv_sqrt(cyy)
        u, s, vt = np.linalg.svd(kx @ (xc.T @ yc / n) @ ky, full_matrices=False)
        d = min(self.dim, len(s))
        # scale each canonical direction by its correlation so strong directions count more
        self.wx = kx @ u[:, :d] * s[:d]
        self.wy = ky @ vt[:d].T * s[:d]
        return self

    def _map(self, a: np.ndarray, mean: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
        if mean is None or w is None:
            raise RuntimeError("CCAMap.fit must be called first")
        z = (np.asarray(a, np.float64) - mean) @ w
        return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def image(self, x: np.ndarray) -> np.ndarray:
        return self._map(x, self.mean_x, self.wx)

    def text(self, y: np.ndarray) -> np.ndarray:
        return self._map(y, self.mean_y, self.wy)
