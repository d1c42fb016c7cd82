"""The vector-index plug point: one vector space, string product ids, inner product on unit vectors.

A backend implements six small hooks (``_add``, ``_remove``, ``_get``, ``_search``, ``_save_data``,
``_load_data``); validation, id bookkeeping, result formatting and persistence live here once.

Ids: callers use string product ids. Inside, every id has an int64 *label* (stable until the id is
removed). An :class:`AllowList` is a set of labels, so a filter computed once (e.g. by the metadata
store, whose product keys are the labels of every space in a ``ProductIndex``) is applied INSIDE each
backend's search (a mask, or a FAISS ``IDSelector``), never by post-filtering a short top-k.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from samestyle.errors import ArtifactError
from samestyle.fsio import read_json, write_json
from samestyle.index.labels import (
    AllowList,
    IndexInputError,
    LabelMap,
    UnknownIdError,
    read_label_map,
    write_label_map,
)
from samestyle.registry import Registry

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_FILE = "index.json"
NORM_TOLERANCE = 1e-3
# Flat (exact) search reads n * dim floats per query: measured ~7-9 ms per query for 100k x 256-d on one
# core (benchmarks/bench_index.py), so ~15-20 ms at this budget (200k x 256-d, ~205 MB), about what an
# interactive query may spend. Above it HNSW (~0.3-0.5 ms) is worth its build (~20-50 s per 100k on two
# cores), extra memory (~M * 8 bytes a vector) and approximate results (recall@10 0.92-1.0 measured).
FLAT_BUDGET_FLOATS = 200_000 * 256
FLAT_MAX_PRODUCTS = 100_000
# From here IVF-SQ8 (faiss-ivf) replaces HNSW: at 1M x 256-d it built in ~70 s (HNSW: many minutes on two
# cores), stores ~0.3 KB a product (HNSW ~1.3 KB) and reached recall@10 0.98 at p99 < 1 ms with nprobe
# calibrated for 0.95 (benchmarks/bench_scale.py, docs/scaling.md).
IVF_MIN_PRODUCTS = 500_000

Results = list[list[tuple[str, float]]]

INDEX_BACKENDS: Registry[VectorIndex] = Registry("index backend")


def choose_backend(n: int, dim: int) -> str:
    """Pick a backend for ``n`` vectors of ``dim`` dims: exact ``faiss-flat`` for catalogues up to
    :data:`FLAT_MAX_PRODUCTS` (whatever the dim) or under :data:`FLAT_BUDGET_FLOATS`, else HNSW.

    Exact flat search is linear in ``n * dim``: at 100k x 1280 a query costs ~20-40 ms on one core, needs
    no build, supports real deletes and is exact, which a catalogue of that size should prefer to an
    approximate graph. Above, HNSW keeps queries under a millisecond; from :data:`IVF_MIN_PRODUCTS` on,
    IVF with SQ8 codes (``faiss-ivf``: auto ``nlist``, ``nprobe`` calibrated for recall 0.95) builds
    faster and needs a quarter of the memory.
    """
    if n <= FLAT_MAX_PRODUCTS or n * dim <= FLAT_BUDGET_FLOATS:
        return "faiss-flat"
    return "faiss-ivf" if n >= IVF_MIN_PRODUCTS else "faiss-hnsw"


class VectorIndex(ABC):
    """One vector space: string ids -> L2-normalised float32 vectors, searched by inner product.

    Example:
        >>> index = INDEX_BACKENDS.build("exact", dim=2)
        >>> index.add(["a", "b"], np.array([[1, 0], [0, 1]], np.float32))
        >>> index.search(np.array([[1, 0]], np.float32), k=1)
        [[('a', 1.0)]]
    """

    backend: ClassVar[str]
    config_class: ClassVar[type[Any]]
    config: Any

    def __init__(self, dim: int, config: Any = None) -> None:
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise IndexInputError(f"index dim must be a positive integer, got {dim!r}")
        self._dim = int(dim)
        self.config = self.config_class() if config is None else config
        self._map = LabelMap()

    # ---- public API ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._map

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, n={len(self)}, config={self.config})"

    @property
    def ids(self) -> list[str]:
        """Every id in the index (insertion order, not meaningful)."""
        return self._map.ids()

    def add(
        self, ids: Sequence[str], vectors: np.ndarray, labels: Sequence[int] | np.ndarray | None = None
    ) -> None:
        """Add new ids; raises :class:`IndexInputError` if one is already present (use :meth:`upsert`).

        Args:
            ids: string ids, unique.
            vectors: [N, dim] unit-length vectors, one per id.
            labels: optional int64 labels to give the ids (a ``ProductIndex`` passes its product keys
                so one :class:`AllowList` serves every space); new labels are drawn when omitted.
        """
        ids = self._check_ids(ids)
        vecs = self.check_vectors(vectors, n=len(ids))
        present = [i for i in ids if i in self._map]
        if present:
            raise IndexInputError(
                f"{len(present)} id(s) already in the index (first: {present[0]!r}); use upsert() to replace"
            )
        labs = self._map.new_labels(ids, labels)
        if len(ids):
            self._add(labs, vecs)
            self._map.commit(ids, labs)
            self._after_mutation()

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, labels: Sequence[int] | np.ndarray | None = None
    ) -> None:
        """Add new ids and replace the vectors of ids already present (they keep their labels)."""
        ids = self._check_ids(ids)
        vecs = self.check_vectors(vectors, n=len(ids))
        old = np.array([i in self._map for i in ids], dtype=bool)
        if old.any():
            old_ids = [i for i, o in zip(ids, old, strict=True) if o]
            old_labels = self._map.labels(old_ids)
            if labels is not None and not np.array_equal(np.asarray(labels, np.int64)[old], old_labels):
                raise IndexInputError("upsert() cannot change the label of an id already present")
            self._replace(old_labels, vecs[old])
        if not old.all():
            new_ids = [i for i, o in zip(ids, old, strict=True) if not o]
            new_labels = None if labels is None else np.asarray(labels, np.int64)[~old]
            labs = self._map.new_labels(new_ids, new_labels)
            self._add(labs, vecs[~old])
            self._map.commit(new_ids, labs)
        if len(ids):
            self._after_mutation()

    def remove(self, ids: Iterable[str]) -> int:
        """Remove the ids that are present (others are ignored). Returns how many were removed."""
        present = list(dict.fromkeys(i for i in ids if i in self._map))
        if present:
            self._remove(self._map.labels(present))
            self._map.drop(present)
            self._after_mutation()
        return len(present)

    def search(self, queries: np.ndarray, k: int, allowed: AllowList | None = None) -> Results:
        """The ``k`` best ``(id, score)`` per query, best first; only ids in ``allowed`` when given.

        Inputs: queries [Q, dim] (or [dim]) unit vectors. Fewer than ``k`` hits come back only when
        fewer than ``k`` vectors (allowed ones, with a filter) exist.
        """
        q = self.check_vectors(queries, what="queries")
        if not isinstance(k, int | np.integer) or k < 1:
            raise IndexInputError(f"k must be a positive integer, got {k!r}")
        if len(self) == 0 or (allowed is not None and len(allowed) == 0):
            return [[] for _ in range(len(q))]
        scores, labels = self._search(q, int(k), allowed)  # [Q, k'] each, label -1 = no hit
        id_of = self._map.id_of
        return [
            [(id_of(int(lab)), float(s)) for s, lab in zip(srow, lrow, strict=True) if lab >= 0]
            for srow, lrow in zip(scores, labels, strict=True)
        ]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors [N, dim] of ``ids``; raises :class:`UnknownIdError` for an id not present."""
        labs = self._map.labels(list(ids))
        if len(labs) == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(self._get(labs), dtype=np.float32)

    def allow(self, ids: Iterable[str]) -> AllowList:
        """An :class:`AllowList` of the given ids that are present (unknown ids are ignored)."""
        return AllowList.from_labels([self._map.label(i) for i in ids if i in self._map])

    def labels(self, ids: Sequence[str]) -> np.ndarray:
        """Internal int64 labels of ``ids`` (raises :class:`UnknownIdError`)."""
        return self._map.labels(list(ids))

    def check_vectors(self, vectors: np.ndarray, n: int | None = None, what: str = "vectors") -> np.ndarray:
        """Validate; return C-contiguous float32 [N, dim] unit vectors (a [dim] query becomes [1, dim])."""
        arr = np.asarray(vectors)
        if arr.ndim == 1 and what == "queries":
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise IndexInputError(f"{what} have shape {arr.shape}; this index holds {self.dim}-d vectors")
        if n is not None and arr.shape[0] != n:
            raise IndexInputError(f"got {arr.shape[0]} {what} for {n} ids")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise IndexInputError(f"{what} contain NaN or infinite values")
        norms = np.linalg.norm(arr, axis=1)
        if len(arr) and np.abs(norms - 1.0).max() > NORM_TOLERANCE:
            bad = int(np.argmax(np.abs(norms - 1.0)))
            raise IndexInputError(
                f"{what} must be L2-normalised (row {bad} has norm {norms[bad]:.4f}); "
                "divide by np.linalg.norm(v, axis=1, keepdims=True)"
            )
        return arr

    # ---- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the index into ``directory`` (each file atomically, ``index.json`` last)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self._save_data(out)
        write_label_map(out, self._map)
        meta = {
            "format_version": FORMAT_VERSION,
            "backend": self.backend,
            "dim": self.dim,
            "count": len(self),
            "config": dataclasses.asdict(self.config),
        }
        write_json(out / INDEX_FILE, meta)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> VectorIndex:
        """Load an index saved by :meth:`save`; on the base class, the backend named on disk is used."""
        path = Path(directory)
        meta = read_index_meta(path)
        target = backend_class(meta["backend"]) if cls is VectorIndex else cls
        if target.backend != meta["backend"]:
            raise ArtifactError(f"{path}: holds a '{meta['backend']}' index, not '{target.backend}'")
        try:
            index = target(int(meta["dim"]), config=target.config_class(**meta.get("config", {})))
            index._map = read_label_map(path)
            index._load_data(path)
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{path}: incomplete or unreadable index ({exc}); rebuild it") from None
        if len(index) != meta["count"]:
            raise ArtifactError(f"{path}: index.json says {meta['count']} vectors, files hold {len(index)}")
        return index

    # ---- backend hooks ------------------------------------------------------------------------
    @abstractmethod
    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Store new vectors [N, dim] under new labels [N]."""

    @abstractmethod
    def _remove(self, labels: np.ndarray) -> None:
        """Forget the vectors of present labels [N]."""

    def _replace(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """New vectors for present labels; default: remove then add."""
        self._remove(labels)
        self._add(labels, vectors)

    @abstractmethod
    def _get(self, labels: np.ndarray) -> np.ndarray:
        """Vectors [N, dim] of present labels [N]."""

    @abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, allowed: AllowList | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores [Q, k'], labels [Q, k']) best first; label -1 pads missing hits."""

    @abstractmethod
    def _save_data(self, directory: Path) -> None:
        """Write the backend's own files (atomically) into ``directory``."""

    @abstractmethod
    def _load_data(self, directory: Path) -> None:
        """Read the files written by :meth:`_save_data` (the label map is already loaded)."""

    def _after_mutation(self) -> None:  # noqa: B027 - optional hook
        """Called after every add/upsert/remove (HNSW compacts here)."""

    @staticmethod
    def _check_ids(ids: Sequence[str]) -> list[str]:
        ids = list(ids)
        if any(not isinstance(i, str) for i in ids):
            raise IndexInputError("ids must be strings")
        if len(set(ids)) != len(ids):
            raise IndexInputError("ids must be unique within one call")
        return ids


def read_index_meta(path: Path) -> dict[str, Any]:
    """``index.json`` of a saved index, checked; raises :class:`ArtifactError` with what to do."""
    meta_file = path / INDEX_FILE
    if not meta_file.exists():
        raise ArtifactError(f"{path}: no {INDEX_FILE}; not a saved vector index (or an incomplete one)")
    try:
        meta: dict[str, Any] = read_json(meta_file)
    except ValueError as exc:
        raise ArtifactError(f"{meta_file}: not valid JSON ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: vector index format {meta.get('format_version')!r}, this samestyle reads "
            f"{FORMAT_VERSION}; rebuild it with 'samestyle index'"
        )
    return meta


def backend_class(name: str) -> type[VectorIndex]:
    """The class registered under ``name`` in :data:`INDEX_BACKENDS` (unknown: did-you-mean error)."""
    factory = INDEX_BACKENDS.get(name)
    if not (isinstance(factory, type) and issubclass(factory, VectorIndex)):
        raise ArtifactError(f"index backend '{name}' is not a VectorIndex class")
    return factory


__all__ = [
    "FLAT_BUDGET_FLOATS",
    "FLAT_MAX_PRODUCTS",
    "INDEX_BACKENDS",
    "IVF_MIN_PRODUCTS",
    "AllowList",
    "IndexInputError",
    "UnknownIdError",
    "VectorIndex",
    "backend_class",
    "choose_backend",
    "read_index_meta",
]
