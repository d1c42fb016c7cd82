"""Exact NumPy search: the slow, obviously-correct twin every other backend is tested against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samestyle.fsio import atomic_open
from samestyle.index.base import INDEX_BACKENDS, VectorIndex
from samestyle.index.labels import AllowList

VECTORS_FILE = "vectors.npy"
LABELS_FILE = "labels.npy"


def exact_topk(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``min(k, N)`` inner products of each query, best first (ties: lower position first).

    Inputs: queries [Q, D], vectors [N, D]. Returns (scores [Q, k'], positions [Q, k']).
    """
    n = vectors.shape[0]
    kk = min(k, n)
    if kk == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    sims = queries @ vectors.T  # [Q, N]
    if kk < n:
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]  # [Q, k'] unordered
    else:
        part = np.broadcast_to(np.arange(n), sims.shape)
    part_scores = np.take_along_axis(sims, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # by score desc, then position asc
    pos = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return np.take_along_axis(part_scores, order, axis=1).astype(np.float32), pos


@dataclass(frozen=True)
class ExactConfig:
    """The exact backend has nothing to tune."""


class ExactIndex(VectorIndex):
    """All vectors in one [N, dim] array; a search is one matrix product plus a partial sort.

    Removes compact the arrays; a filter is a boolean mask over rows, applied before the top-k.
    """

    backend = "exact"
    config_class = ExactConfig
    config: ExactConfig

    def __init__(self, dim: int, config: ExactConfig | None = None) -> None:
        super().__init__(dim, config)
        self._vectors = np.zeros((0, self.dim), np.float32)  # [N, dim]
        self._row_labels = np.zeros(0, np.int64)  # [N]

    def _rows(self, labels: np.ndarray) -> np.ndarray:
        order = np.argsort(self._row_labels, kind="stable")
        return order[np.searchsorted(self._row_labels, labels, sorter=order)]

    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self._vectors = np.concatenate([self._vectors, vectors])
        self._row_labels = np.concatenate([self._row_labels, labels])

    def _remove(self, labels: np.ndarray) -> None:
        keep = ~AllowList.from_labels(labels).mask(self._row_labels)
        self._vectors = self._vectors[keep]
        self._row_labels = self._row_labels[keep]

    def _replace(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self._vectors[self._rows(labels)] = vectors

    def _get(self, labels: np.ndarray) -> np.ndarray:
        return self._vectors[self._rows(labels)]

    def _search(
        self, queries: np.ndarray, k: int, allowed: AllowList | None
    ) -> tuple[np.ndarray, np.ndarray]:
        vectors, labels = self._vectors, self._row_labels
        if allowed is not None:
            keep = allowed.mask(labels)
            vectors, labels = vectors[keep], labels[keep]
        scores, pos = exact_topk(queries, vectors, k)
        return scores, labels[pos]

    def _save_data(self, directory: Path) -> None:
        with atomic_open(directory / VECTORS_FILE, "wb") as fh:
            np.save(fh, self._vectors)
        with atomic_open(directory / LABELS_FILE, "wb") as fh:
            np.save(fh, self._row_labels)

    def _load_data(self, directory: Path) -> None:
        vectors = np.load(directory / VECTORS_FILE)
        labels = np.load(directory / LABELS_FILE)
        if vectors.shape != (len(labels), self.dim):
            raise ValueError(f"vectors {vectors.shape} do not match {len(labels)} labels of dim {self.dim}")
        self._vectors = np.ascontiguousarray(vectors, np.float32)
        self._row_labels = labels.astype(np.int64)


INDEX_BACKENDS.register("exact")(ExactIndex)
