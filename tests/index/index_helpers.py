"""Shared by the index tests: a backend loaded beside its exact twin, and recall against the twin."""

from __future__ import annotations

import numpy as np

from samestyle.index import ExactIndex, VectorIndex


def pair_with_exact(index: VectorIndex, vecs: np.ndarray) -> tuple[ExactIndex, list[str]]:
    """Add ``vecs`` (ids ``id0..``) to ``index`` and to a fresh exact index; returns that and the ids."""
    ids = [f"id{i}" for i in range(len(vecs))]
    exact = ExactIndex(vecs.shape[1])
    exact.add(ids, vecs)
    index.add(ids, vecs)
    return exact, ids


def recall(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> float:
    """Share of the wanted ids found, over all queries."""
    hits = sum(len({p for p, _ in g} & {p for p, _ in w}) for g, w in zip(got, want, strict=True))
    return hits / sum(len(w) for w in want)
