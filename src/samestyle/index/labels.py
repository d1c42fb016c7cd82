"""String ids <-> int64 labels, and :class:`AllowList`, the set of labels a filtered search may return."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from samestyle.errors import ArtifactError, SamestyleError
from samestyle.fsio import atomic_path

IDS_FILE = "ids.parquet"
NEXT_LABEL_KEY = b"samestyle.next_label"


class IndexInputError(SamestyleError, ValueError):
    """Vectors or ids given to an index are unusable (wrong shape or dim, not unit length, duplicates)."""


class UnknownIdError(IndexInputError, KeyError):
    """An id is not in the index."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, eq=False)
class AllowList:
    """Allowed internal labels: a sorted, unique int64 array [A].

    Build one with :meth:`from_labels` (sorts and dedupes), :meth:`VectorIndex.allow` (from string ids)
    or ``MetadataStore.select`` (from a :class:`Filter`). Backends translate it into a mask or a FAISS
    ``IDSelector`` so filtering happens inside the search.
    """

    labels: np.ndarray  # [A] int64, sorted ascending, unique

    @classmethod
    def from_labels(cls, labels: Iterable[int] | np.ndarray) -> AllowList:
        arr = np.asarray(labels if isinstance(labels, np.ndarray) else list(labels), dtype=np.int64)
        return cls(np.unique(arr.reshape(-1)))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __contains__(self, label: object) -> bool:
        if not isinstance(label, int | np.integer):
            return False
        i = int(np.searchsorted(self.labels, label))
        return i < len(self) and int(self.labels[i]) == int(label)

    def mask(self, labels: np.ndarray) -> np.ndarray:
        """Boolean [N]: which of ``labels`` [N] are allowed (vectorised, O(N log A))."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(self) == 0:
            return np.zeros(labels.shape, dtype=bool)
        pos = np.searchsorted(self.labels, labels)
        pos[pos == len(self)] = 0
        return self.labels[pos] == labels


class LabelMap:
    """A bijection between string ids and int64 labels; labels are never reused after a remove."""

    def __init__(self) -> None:
        self._label: dict[str, int] = {}
        self._id: dict[int, str] = {}
        self.next_label = 0

    def __len__(self) -> int:
        return len(self._label)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._label

    def ids(self) -> list[str]:
        return list(self._label)

    def label(self, product_id: str) -> int:
        return self._label[product_id]

    def id_of(self, label: int) -> str:
        return self._id[label]

    def labels(self, ids: Sequence[str]) -> np.ndarray:
        """Labels [N] of ``ids``; raises ``UnknownIdError`` naming the first id not present."""
        try:
            return np.fromiter((self._label[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as exc:
            raise UnknownIdError(f"id {exc.args[0]!r} is not in the index") from None

    def new_labels(self, ids: Sequence[str], labels: Sequence[int] | np.ndarray | None) -> np.ndarray:
        """Labels for new ``ids``: fresh ones, or ``labels`` checked (non-negative, unused, unique)."""
        if labels is None:
            return np.arange(self.next_label, self.next_label + len(ids), dtype=np.int64)
        labs = np.asarray(labels, dtype=np.int64).reshape(-1)
        problem = None
        if len(labs) != len(ids):
            problem = f"got {len(labs)} labels for {len(ids)} ids"
        elif len(labs) and labs.min() < 0:
            problem = "labels must be non-negative"
        elif len(np.unique(labs)) != len(labs):
            problem = "labels must be unique"
        elif any(int(lab) in self._id for lab in labs):
            problem = "a label is already used by another id"
        if problem:
            raise IndexInputError(problem)
        return labs

    def commit(self, ids: Sequence[str], labels: np.ndarray) -> None:
        for product_id, lab in zip(ids, labels.tolist(), strict=True):
            self._label[product_id] = lab
            self._id[lab] = product_id
        if len(labels):
            self.next_label = max(self.next_label, int(labels.max()) + 1)

    def drop(self, ids: Iterable[str]) -> None:
        for product_id in ids:
            del self._id[self._label.pop(product_id)]

    def arrays(self) -> tuple[list[str], np.ndarray]:
        ids = list(self._label)
        return ids, np.fromiter(self._label.values(), dtype=np.int64, count=len(ids))


def write_label_map(directory: Path, label_map: LabelMap) -> None:
    """Write ``ids.parquet`` (columns id, label; next label in the schema metadata) atomically."""
    ids, labels = label_map.arrays()
    table = pa.table({"id": pa.array(ids, pa.string()), "label": pa.array(labels, pa.int64())})
    table = table.replace_schema_metadata({NEXT_LABEL_KEY: str(label_map.next_label).encode()})
    with atomic_path(directory / IDS_FILE) as tmp:
        pq.write_table(table, tmp)


def read_label_map(directory: Path) -> LabelMap:
    table = pq.read_table(directory / IDS_FILE)
    ids = table.column("id").to_pylist()
    labels = table.column("label").to_numpy()
    if len(set(ids)) != len(ids):
        raise ArtifactError(f"{directory / IDS_FILE}: duplicate ids; rebuild the index")
    label_map = LabelMap()
    label_map.commit(ids, labels.astype(np.int64))
    meta = table.schema.metadata or {}
    label_map.next_label = max(label_map.next_label, int(meta.get(NEXT_LABEL_KEY, b"0")))
    return label_map
