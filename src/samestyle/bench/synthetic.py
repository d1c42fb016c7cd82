"""A synthetic catalogue of unit vectors for index benchmarks at up to millions of products.

Real embedding spaces are clustered (categories, styles) and have a low intrinsic dimension: most of a
product's variation lies in a few directions specific to its category. The generator mimics that:

    x = centre[c] + spread * (basis[c] @ z) / sqrt(intrinsic) + noise * e / sqrt(dim),   x /= |x|

with ``clusters`` random centres, a random ``intrinsic``-dimensional basis per cluster, ``z`` and ``e``
standard normal. Cluster sizes follow a Zipf-like law (a few big categories, a long tail). Generation is
chunked and seeded per chunk, so 1M x 256 (1 GB of float32) can be written straight into a memory map.
Queries are fresh points from the same clusters (never stored vectors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK = 65_536


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of a synthetic catalogue (defaults: 256-d, 1000 categories, 24-d within-category spread)."""

    dim: int = 256
    clusters: int = 1000
    intrinsic: int = 24
    spread: float = 0.8
    noise: float = 0.25
    zipf: float = 0.7
    seed: int = 0


class SyntheticCatalog:
    """Deterministic generator: ``vectors(start, stop)`` gives rows ``[start, stop)`` of the catalogue."""

    def __init__(self, spec: SyntheticSpec | None = None) -> None:
        self.spec = spec or SyntheticSpec()
        s = self.spec
        rng = np.random.default_rng(s.seed)
        centres = rng.normal(size=(s.clusters, s.dim)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)  # [C, D]
        basis = rng.normal(size=(s.clusters, s.intrinsic, s.dim)).astype(np.float32)
        self.basis = basis / np.sqrt(s.dim)  # [C, r, D], rows of norm ~1
        weights = 1.0 / np.arange(1, s.clusters + 1) ** s.zipf
        self.weights = weights / weights.sum()  # [C] category shares

    def _points(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        cluster = rng.choice(s.clusters, size=n, p=self.weights)  # [n]
        z = rng.normal(size=(n, s.intrinsic)).astype(np.float32)
        x = self.centres[cluster].copy()  # [n, D]
        order = np.argsort(cluster, kind="stable")
        bounds = np.flatnonzero(np.diff(cluster[order])) + 1
        for rows in np.split(order, bounds):  # one small matmul per category present
            x[rows] += (s.spread / np.sqrt(s.intrinsic)) * (z[rows] @ self.basis[cluster[rows[0]]])
        x += (s.noise / np.sqrt(s.dim)) * rng.normal(size=(n, s.dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), cluster

    def vectors(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``[start, stop)``: (vectors [n, D] float32 unit, cluster [n]); same rows on every call."""
        parts, labels = [], []
        for chunk in range(start // CHUNK, (stop - 1) // CHUNK + 1 if stop > start else start // CHUNK):
            rng = np.random.default_rng([self.spec.seed, 1, chunk])
            vecs, cl = self._points(CHUNK, rng)
            lo, hi = max(start, chunk * CHUNK) - chunk * CHUNK, min(stop, (chunk + 1) * CHUNK) - chunk * CHUNK
            parts.append(vecs[lo:hi])
            labels.append(cl[lo:hi])
        if not parts:
            return np.zeros((0, self.spec.dim), np.float32), np.zeros(0, np.int64)
        return np.concatenate(parts), np.concatenate(labels)

    def queries(self, n: int, seed: int = 1) -> np.ndarray:
        """``n`` query vectors [n, D] from the same categories (not stored rows)."""
        return self._points(n, np.random.default_rng([self.spec.seed, 2, seed]))[0]

    def write(self, path: str | Path, n: int) -> np.ndarray:
        """Write ``n`` rows to a ``.npy`` file chunk by chunk (memory-mapped); returns the clusters [n]."""
        out = np.lib.format.open_memmap(str(path), mode="w+", dtype=np.float32, shape=(n, self.spec.dim))
        clusters = np.zeros(n, np.int64)
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            out[start:stop], clusters[start:stop] = self.vectors(start, stop)
        out.flush()
        del out
        return clusters


__all__ = ["SyntheticCatalog", "SyntheticSpec"]
