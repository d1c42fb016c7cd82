"""Kaleido patches: 1x1 .. 5x5 grids (55 patches) mean-pooled from a backbone feature map.

Region boundaries (a k x k grid over an ``H x W`` map): row cell ``i`` covers map rows
``floor(i * H / k)`` up to (excluded) ``ceil((i + 1) * H / k)``, columns alike. That is the rule of
``torch.nn.functional.adaptive_avg_pool2d``: regions tile the map and, where ``k`` does not divide
``H``, neighbouring regions share a row/column (on 7 cells: 2x2 -> rows 0-3 and 3-6). Each patch is the
plain mean of its region, so all 55 patches are one linear map of the 49 cells: ``pool_matrix`` builds
that ``[55, 49]`` matrix once and ``kaleido_patches`` is a single matmul.

Patch order: scale 1 (1 patch), scale 2 (4), ..., scale 5 (25); within a scale row-major. Each patch has
a scale id (0..4) and a cell id (0..54, the patch index itself, so every cell of every grid gets its own
embedding) from ``patch_layout``.

Example:
    >>> m = np.random.rand(2, 1280, 7, 7).astype(np.float32)
    >>> kaleido_patches(m).shape
    (2, 55, 1280)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_SCALES: tuple[int, ...] = (1, 2, 3, 4, 5)


def region_bounds(k: int, size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the ``k`` cells along one axis of length ``size`` (floor/ceil)."""
    if k < 1 or k > size:
        raise ValueError(f"a grid of {k} cells does not fit an axis of {size}")
    return [(math.floor(i * size / k), math.ceil((i + 1) * size / k)) for i in range(k)]


def n_patches(scales: Sequence[int] = DEFAULT_SCALES) -> int:
    return sum(k * k for k in scales)


def pool_matrix(height: int = 7, width: int = 7, scales: Sequence[int] = DEFAULT_SCALES) -> np.ndarray:
    """``[n_patches, height * width]`` float32: row p averages the map cells of patch p."""
    rows = []
    for k in scales:
        for r0, r1 in region_bounds(k, height):
            for c0, c1 in region_bounds(k, width):
                m = np.zeros((height, width), dtype=np.float32)
                m[r0:r1, c0:c1] = 1.0 / ((r1 - r0) * (c1 - c0))
                rows.append(m.reshape(-1))
    return np.stack(rows)


def patch_layout(scales: Sequence[int] = DEFAULT_SCALES) -> tuple[np.ndarray, np.ndarray]:
    """``(scale_ids [P], cell_ids [P])`` int64 for the patch order of ``pool_matrix``."""
    scale_ids = np.concatenate([np.full(k * k, s, dtype=np.int64) for s, k in enumerate(scales)])
    return scale_ids, np.arange(len(scale_ids), dtype=np.int64)


def scale_slices(scales: Sequence[int] = DEFAULT_SCALES) -> list[slice]:
    """The patch-index range of each scale, in ``scales`` order."""
    out, start = [], 0
    for k in scales:
        out.append(slice(start, start + k * k))
        start += k * k
    return out


def kaleido_patches(maps: np.ndarray, scales: Sequence[int] = DEFAULT_SCALES) -> np.ndarray:
    """Patches of feature maps.

    Args:
        maps: ``[N, C, H, W]`` (any float dtype).
        scales: grid sizes.

    Returns:
        ``[N, n_patches, C]`` float32.
    """
    n, c, h, w = maps.shape
    pool = pool_matrix(h, w, scales)  # [P, HW]
    flat = maps.reshape(n, c, h * w).astype(np.float32, copy=False)  # [N, C, HW]
    return np.einsum("ph,nch->npc", pool, flat, optimize=True)  # [N, P, C]


class PatchPCA:
    """A fixed PCA (mean + top components) for patch features, fitted once on train patches.

    Args:
        mean: ``[C]``; components: ``[C, D]`` orthonormal columns, largest variance first.
    """

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean = mean.astype(np.float32)
        self.components = components.astype(np.float32)

    @classmethod
    def fit(cls, rows: np.ndarray, dim: int) -> PatchPCA:
        """Fit on ``[M, C]`` rows (e.g. a sample of train patches) by eigendecomposition of the covariance."""
        x = rows.astype(np.float64)
        mean = x.mean(0)
        cov = np.cov(x - mean, rowvar=False)
        vals, vecs = np.linalg.eigh(cov)
        order = np.argsort(vals)[::-1][:dim]
        return cls(mean, vecs[:, order])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``[..., C] -> [..., D]`` float32."""
        return (x.astype(np.float32) - self.mean) @ self.components

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])
