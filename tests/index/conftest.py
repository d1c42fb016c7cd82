"""Synthetic unit vectors for the index tests (seeded, clustered like real embeddings)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

VectorMaker = Callable[..., np.ndarray]


def make_unit(n: int, dim: int, *, seed: int = 0, clusters: int = 0, spread: float = 0.6) -> np.ndarray:
    """[n, dim] float32 unit vectors; with ``clusters``, points scattered around that many centres."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    if clusters:
        centres = rng.normal(size=(clusters, dim)).astype(np.float32)
        x = centres[rng.integers(0, clusters, n)] + spread * x
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def unit() -> VectorMaker:
    return make_unit


def make_data(
    n: int, n_queries: int, dim: int, *, seed: int = 0, clusters: int = 100, spread: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(base [n, dim], queries [n_queries, dim]) from the same clusters; queries are held-out points."""
    both = make_unit(n + n_queries, dim, seed=seed, clusters=clusters, spread=spread)
    return both[:n], both[n:]


@pytest.fixture
def data() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return make_data
