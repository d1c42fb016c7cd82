"""FAISS backends: ``faiss-flat`` (exact, real deletes) and ``faiss-hnsw`` (graph, approximate, tombstones).

Filters become an ``IDSelector`` passed in ``SearchParameters`` (a batch for small sets, a bitmap for
large ones), so FAISS skips disallowed vectors while it searches. ``faiss`` is imported on first use.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from samestyle.errors import ConfigError, DependencyError
from samestyle.fsio import atomic_open, atomic_path
from samestyle.index.base import INDEX_BACKENDS, VectorIndex
from samestyle.index.exact import exact_topk
from samestyle.index.labels import AllowList

log = logging.getLogger(__name__)

FAISS_FILE = "faiss.index"
ROWS_FILE = "row_labels.npy"


def _faiss() -> ModuleType:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise DependencyError(f"faiss is not installed ({exc}); pip install faiss-cpu") from None
    return faiss


def make_selector(members: np.ndarray, universe: int) -> Any:
    """A FAISS ``IDSelector`` for ``members`` (ids in ``[0, universe)``).

    ``IDSelectorBatch`` (a hash set) when the set is small, else ``IDSelectorBitmap`` (one bit per id,
    built with one vectorised pass); the crossover is where hashing A ids costs about as much as
    writing ``universe`` bits.
    """
    faiss = _faiss()
    members = np.ascontiguousarray(members, dtype=np.int64)
    if len(members) * 32 < universe:
        return faiss.IDSelectorBatch(members)
    mask = np.zeros(universe, dtype=bool)
    mask[members[members < universe]] = True
    return faiss.IDSelectorBitmap(np.packbits(mask, bitorder="little"))  # bit i%8 of byte i//8


def _write_faiss(index: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        _faiss().write_index(index, str(tmp))


@dataclass(frozen=True)
class FlatConfig:
    """Flat search has nothing to tune."""


class FaissFlatIndex(VectorIndex):
    """``IndexIDMap2(IndexFlatIP)``: exact inner-product search, FAISS ids are the labels, real removes."""

    backend = "faiss-flat"
    config_class = FlatConfig
    config: FlatConfig

    def __init__(self, dim: int, config: FlatConfig | None = None) -> None:
        super().__init__(dim, config)
        faiss = _faiss()
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, labels)

    def _remove(self, labels: np.ndarray) -> None:
        self._index.remove_ids(_faiss().IDSelectorBatch(labels))

    def _get(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(self._index.reconstruct_batch(labels))

    def _search(
        self, queries: np.ndarray, k: int, allowed: AllowList | None
    ) -> tuple[np.ndarray, np.ndarray]:
        params = None
        if allowed is not None:  # IndexIDMap2 translates row -> label before asking the selector
            params = _faiss().SearchParameters(sel=make_selector(allowed.labels, self._map.next_label))
        scores, labels = self._index.search(queries, k, params=params)
        return scores, labels

    def _save_data(self, directory: Path) -> None:
        _write_faiss(self._index, directory / FAISS_FILE)

    def _load_data(self, directory: Path) -> None:
        self._index = _faiss().read_index(str(directory / FAISS_FILE))
        if self._index.ntotal != len(self._map) or self._index.d != self.dim:
            raise ValueError(f"{FAISS_FILE} holds {self._index.ntotal} x {self._index.d}-d vectors")


@dataclass(frozen=True)
class HNSWConfig:
    """HNSW graph and housekeeping settings.

    Attributes:
        M: graph degree (memory ~ M * 8 bytes per vector on top of the vector).
        ef_construction: build-time beam width (higher: better graph, slower build).
        ef_search: search beam width; raised to ``k`` when ``k`` is larger.
        max_tombstone_fraction: rebuild the graph when removed/replaced rows exceed this share.
        compact_on_save_max: on save, rebuild away tombstones if at most this many vectors remain.
        max_filtered_ef: a filtered graph walk widens efSearch by 1 / (allowed share), up to this:
            FAISS's beam also holds the disallowed nodes it passes through.
        exact_filter_factor, exact_filter_walk: a filtered search is answered exactly over the
            allowed subset when it has at most ``max(exact_filter_factor * k, exact_filter_walk * M * ef)``
            vectors (``ef`` the widened beam; ``2 * M * ef`` bounds the distances the walk computes).
            On 100k x 256-d that sends filters keeping up to ~20% to the exact path, which is then
            faster than the walk and never short of ``k``. Both 0: always walk the graph.
    """

    M: int = 32
    ef_construction: int = 100
    ef_search: int = 64
    max_tombstone_fraction: float = 0.2
    compact_on_save_max: int = 50_000
    exact_filter_factor: int = 100
    exact_filter_walk: float = 2.0
    max_filtered_ef: int = 1024

    def __post_init__(self) -> None:
        if min(self.M, self.ef_construction, self.ef_search) < 1:
            raise ConfigError(f"HNSW M, ef_construction and ef_search must be >= 1, got {self}")
        if not 0.0 < self.max_tombstone_fraction <= 1.0:
            raise ConfigError(f"max_tombstone_fraction must be in (0, 1], got {self.max_tombstone_fraction}")


class FaissHNSWIndex(VectorIndex):
    """``IndexHNSWFlat`` (inner product). FAISS rows are append-only; a row -> label array maps back.

    Removed or replaced rows become tombstones (label -1) that an ``IDSelector`` hides at search time;
    the graph is rebuilt when they pass ``max_tombstone_fraction`` (and on save when that is cheap).
    """

    backend = "faiss-hnsw"
    config_class = HNSWConfig
    config: HNSWConfig

    def __init__(self, dim: int, config: HNSWConfig | None = None) -> None:
        super().__init__(dim, config)
        self._index = self._new_graph()
        self._row_labels = np.zeros(0, np.int64)  # [rows] label of each FAISS row, -1 = tombstone
        self._label_rows = np.zeros(0, np.int64)  # [max label + 1] FAISS row of each label, -1 = none
        self._live_selector: Any = None

    @property
    def tombstones(self) -> int:
        """FAISS rows that no longer hold a live vector."""
        return int(self._index.ntotal) - len(self)

    def _new_graph(self) -> Any:
        faiss = _faiss()
        index = faiss.IndexHNSWFlat(self.dim, self.config.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.config.ef_construction
        return index

    def _set_rows(self, labels: np.ndarray, rows: np.ndarray) -> None:
        need = int(labels.max()) + 1 if len(labels) else 0
        if need > len(self._label_rows):
            grown = np.full(max(need, 2 * len(self._label_rows)), -1, np.int64)
            grown[: len(self._label_rows)] = self._label_rows
            self._label_rows = grown
        self._label_rows[labels] = rows

    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        start = int(self._index.ntotal)
        self._index.add(vectors)
        self._row_labels = np.concatenate([self._row_labels, labels])
        self._set_rows(labels, np.arange(start, start + len(labels), dtype=np.int64))
        self._live_selector = None

    def _remove(self, labels: np.ndarray) -> None:
        self._row_labels[self._label_rows[labels]] = -1
        self._label_rows[labels] = -1
        self._live_selector = None

    def _get(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(self._index.reconstruct_batch(self._label_rows[labels]))

    def _after_mutation(self) -> None:
        ntotal = int(self._index.ntotal)
        if ntotal and self.tombstones > self.config.max_tombstone_fraction * ntotal:
            self.compact()

    def compact(self) -> None:
        """Rebuild the graph from the live vectors only (drops every tombstone)."""
        live = np.flatnonzero(self._row_labels >= 0)
        log.info("HNSW compaction: %d live vectors, %d tombstones", len(live), self.tombstones)
        vectors = np.asarray(self._index.reconstruct_batch(live)) if len(live) else None
        labels = self._row_labels[live]
        self._index = self._new_graph()
        self._row_labels = np.zeros(0, np.int64)
        self._label_rows = np.zeros(0, np.int64)
        if vectors is not None:
            self._add(labels, vectors)
        self._live_selector = None

    def _search(
        self, queries: np.ndarray, k: int, allowed: AllowList | None
    ) -> tuple[np.ndarray, np.ndarray]:
        ntotal = int(self._index.ntotal)
        ef = max(self.config.ef_search, k)
        rows: np.ndarray | None = None
        if allowed is None:
            n_allowed, sel = len(self), self._live()
        else:
            rows = self._allowed_rows(allowed)
            n_allowed = len(rows)
            cfg = self.config
            ef = min(math.ceil(ef * len(self) / max(n_allowed, 1)), max(ef, cfg.max_filtered_ef))
            if n_allowed <= max(cfg.exact_filter_factor * k, cfg.exact_filter_walk * cfg.M * ef):
                return self._exact_rows(queries, k, rows)
            sel = make_selector(rows, ntotal)
        params = _faiss().SearchParametersHNSW(efSearch=ef)
        if sel is not None:
            params.sel = sel
        scores, found = self._index.search(queries, k, params=params)  # [Q, k], row -1 = none
        labels = np.where(found >= 0, self._row_labels[np.maximum(found, 0)], -1)
        short = (found >= 0).sum(axis=1) < min(k, n_allowed)
        if short.any():  # the graph walk ran dry under a selective filter: answer those exactly
            if rows is None:
                rows = np.flatnonzero(self._row_labels >= 0)
            ex_scores, ex_labels = self._exact_rows(queries[short], k, rows)
            width = ex_labels.shape[1]
            scores[short], labels[short] = -np.inf, -1
            scores[short, :width], labels[short, :width] = ex_scores, ex_labels
            log.debug("HNSW: %d of %d queries short of k=%d, answered exactly", short.sum(), len(short), k)
        return scores, labels

    def _live(self) -> Any:
        """Selector of live rows, or None when there is no tombstone (cached until the next change)."""
        if self.tombstones == 0:
            return None
        if self._live_selector is None:
            self._live_selector = make_selector(np.flatnonzero(self._row_labels >= 0), len(self._row_labels))
        return self._live_selector

    def _allowed_rows(self, allowed: AllowList) -> np.ndarray:
        labels = allowed.labels[allowed.labels < len(self._label_rows)]
        rows = self._label_rows[labels]
        return rows[rows >= 0]

    def _exact_rows(self, queries: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the FAISS ``rows`` [A] of the graph's flat storage.

        A small subset is copied out and scored with NumPy; a larger one is scanned in place by the
        storage's flat search with a row selector (no copy).
        """
        if len(rows) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if len(rows) * 32 < self._index.ntotal:
            vectors = np.asarray(self._index.reconstruct_batch(rows))  # [A, dim]
            scores, pos = exact_topk(queries, vectors, k)
            return scores, self._row_labels[rows][pos]
        faiss = _faiss()
        storage = faiss.downcast_index(self._index.storage)
        params = faiss.SearchParameters(sel=make_selector(rows, int(self._index.ntotal)))
        scores, found = storage.search(queries, min(k, len(rows)), params=params)  # [Q, k'] storage rows
        return scores, np.where(found >= 0, self._row_labels[np.maximum(found, 0)], -1)

    def _save_data(self, directory: Path) -> None:
        if self.tombstones and len(self) <= self.config.compact_on_save_max:
            self.compact()
        _write_faiss(self._index, directory / FAISS_FILE)
        with atomic_open(directory / ROWS_FILE, "wb") as fh:
            np.save(fh, self._row_labels)

    def _load_data(self, directory: Path) -> None:
        index = _faiss().read_index(str(directory / FAISS_FILE))
        row_labels = np.load(directory / ROWS_FILE).astype(np.int64)
        live = row_labels[row_labels >= 0]
        if index.ntotal != len(row_labels) or index.d != self.dim or len(live) != len(self._map):
            raise ValueError(f"{FAISS_FILE} ({index.ntotal} rows) does not match {ROWS_FILE} and ids")
        index.hnsw.efConstruction = self.config.ef_construction
        self._index, self._row_labels = index, row_labels
        self._label_rows = np.zeros(0, np.int64)
        self._set_rows(live, np.flatnonzero(row_labels >= 0))
        self._live_selector = None


INDEX_BACKENDS.register("faiss-flat")(FaissFlatIndex)
INDEX_BACKENDS.register("faiss-hnsw")(FaissHNSWIndex)
