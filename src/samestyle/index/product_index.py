"""``ProductIndex``: an index folder with one vector space per name, product metadata and a manifest.

:meth:`ProductIndex.save` writes a whole new generation into a hidden ``.gen-N.partial`` folder (spaces
that did not change are hard-linked, not rewritten), renames it to ``gen-N``, then atomically replaces
``manifest.json``; older generations are deleted only after that. A crash at any point leaves a
manifest that names a complete generation. One writer process at a time; readers may open while it
saves (they hold a shared ``flock`` on the folder while loading, and old generations are not deleted
under them).

Threads: one ``ProductIndex`` may be searched by many threads while others update it. A readers-writer
lock makes every public call atomic: a search sees an update (``upsert_products``, ``remove_products``,
``add_space``, ...) completely or not at all. :meth:`ProductIndex.reading` and :meth:`ProductIndex.writing`
hold it across several calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import ArtifactError, ConfigError
from samestyle.index.base import INDEX_BACKENDS, VectorIndex, choose_backend
from samestyle.index.filters import Filter
from samestyle.index.layout import (
    FORMAT_VERSION,
    KIND,
    MANIFEST,
    SPACES,
    commit,
    fsync_dir,
    link_files,
    new_generation,
    read_manifest,
)
from samestyle.index.locking import ReadWriteLock, folder_lock, write_locked
from samestyle.index.metadata import METADATA_FILE, MetadataStore
from samestyle.types import Hit, Product

log = logging.getLogger(__name__)

_SPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

SpaceVectors = np.ndarray | tuple[Sequence[str], np.ndarray]


class ProductIndex:
    """Vector spaces (``"image"``, ``"text"``, ``"fused"``, ...) over one product catalogue, plus metadata.

    Every space uses the metadata's product keys as labels, so one filter serves all spaces.

    Example:
        >>> index = ProductIndex.create("idx", products, meta={"encoder": "fake"})  # doctest: +SKIP
        >>> index.add_space("image", ids, image_vectors)                          # doctest: +SKIP
        >>> index.save(); ProductIndex.open("idx").search("image", q, k=10)       # doctest: +SKIP
    """

    def __init__(
        self, path: Path, metadata: MetadataStore, manifest: Mapping[str, Any] | None = None
    ) -> None:
        """Internal: use :meth:`create` or :meth:`open`."""
        manifest = dict(manifest or {})
        self.path = path
        self.metadata = metadata
        self.meta: dict[str, Any] = dict(manifest.get("meta") or {})
        self._created: str = manifest.get("created") or datetime.now(UTC).isoformat(timespec="seconds")
        self._generation: str | None = manifest.get("generation")
        self._spaces: dict[str, VectorIndex] = {}
        self._space_meta: dict[str, dict[str, Any]] = {
            name: dict(spec.get("meta") or {}) for name, spec in (manifest.get("spaces") or {}).items()
        }
        self._dirty: set[str] = set()
        self._metadata_dirty = manifest == {}
        self._lock = ReadWriteLock()
        self._save_lock = threading.Lock()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        products: Iterable[Product] = (),
        *,
        meta: Mapping[str, Any] | None = None,
        overwrite: bool = True,
    ) -> ProductIndex:
        """A new, empty-spaced index for ``products`` at ``path`` (written by :meth:`save`).

        Args:
            path: the index folder. An index already there stays readable until :meth:`save` atomically
                replaces it; with ``overwrite=False`` its presence is an error instead.
            products: the catalogue; vectors may only be added for these (and later upserted) ids.
            meta: free-form provenance saved in the manifest (encoder names, model run, ...).
        """
        path = Path(path)
        if (path / MANIFEST).exists() and not overwrite:
            raise ArtifactError(f"{path}: an index exists; allow overwrite or choose another folder")
        index = cls(path, MetadataStore.from_products(products))
        index.meta = dict(meta or {})
        return index

    @classmethod
    def open(cls, path: str | Path) -> ProductIndex:
        """Load the index at ``path`` (retrying once if a concurrent save swapped generations)."""
        path = Path(path)
        for attempt in range(3):
            with folder_lock(path, shared=True):  # no generation is deleted while we read one
                manifest = read_manifest(path)
                try:
                    return cls._load(path, manifest)
                except (ArtifactError, OSError):
                    if attempt == 2 or read_manifest(path).get("generation") == manifest["generation"]:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load(cls, path: Path, manifest: dict[str, Any]) -> ProductIndex:
        gen_dir = path / manifest["generation"]
        index = cls(path, MetadataStore.load(gen_dir), manifest)
        for name, spec in (manifest.get("spaces") or {}).items():
            space = VectorIndex.load(gen_dir / SPACES / name)
            if (space.backend, space.dim, len(space)) != (spec["backend"], spec["dim"], spec["count"]):
                raise ArtifactError(f"{path}: space '{name}' does not match {MANIFEST}; rebuild the index")
            index._spaces[name] = space
        return index

    # ---- reading ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[ProductIndex]:
        """Hold the index for several reads: no update lands in between (updates wait)."""
        with self._lock.read():
            yield self

    @contextlib.contextmanager
    def writing(self) -> Iterator[ProductIndex]:
        """Hold the index for several updates: readers see all of them or none (searches wait)."""
        with self._lock.write():
            yield self

    def __len__(self) -> int:
        with self._lock.read():
            return len(self.metadata)

    def __contains__(self, product_id: object) -> bool:
        with self._lock.read():
            return product_id in self.metadata

    def spaces(self) -> list[str]:
        """Names of the vector spaces, sorted."""
        with self._lock.read():
            return sorted(self._spaces)

    def space(self, name: str) -> VectorIndex:
        """The vector index of space ``name``."""
        try:
            return self._spaces[name]
        except KeyError:
            known = ", ".join(self.spaces()) or "(none)"
            raise ConfigError(f"index {self.path} has no space '{name}' (has: {known})") from None

    def get_vectors(self, space: str, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors [N, dim] of ``ids`` in ``space`` (``UnknownIdError`` for an id not in it)."""
        with self._lock.read():
            return self.space(space).get_vectors(ids)

    def get_products(self, ids: Sequence[str]) -> list[Product]:
        """The products of ``ids`` as the metadata knows them (``UnknownIdError`` for an unknown id)."""
        with self._lock.read():
            return self.metadata.get(ids)

    @property
    def manifest(self) -> dict[str, Any]:
        """What ``manifest.json`` says about the current state (as it would be written by a save)."""
        with self._lock.read():
            return self._manifest(self._generation)

    def _manifest(self, generation: str | None) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "generation": generation,
            "created": self._created,
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
            "products": len(self.metadata),
            "spaces": {
                name: {
                    "backend": s.backend,
                    "dim": s.dim,
                    "count": len(s),
                    "config": dataclasses.asdict(s.config),
                    "meta": self._space_meta.get(name, {}),
                }
                for name, s in sorted(self._spaces.items())
            },
            "meta": self.meta,
        }

    def search(
        self,
        space: str,
        queries: np.ndarray,
        k: int,
        filter: Filter | None = None,
        *,
        with_products: bool = True,
    ) -> list[list[Hit]]:
        """The ``k`` best products per query [Q, dim] in ``space``, among those ``filter`` keeps.

        Each :class:`Hit` has ``scores={space: score}`` and, with ``with_products``, the product as the
        metadata knows it (no description or image reference).
        """
        with self._lock.read():
            index = self.space(space)
            found = index.search(queries, k, self.metadata.select(filter))
            products: dict[str, Product] = {}
            if with_products:
                wanted = list(dict.fromkeys(pid for row in found for pid, _ in row))
                products = dict(zip(wanted, self.metadata.get(wanted), strict=True))
        return [[Hit(pid, s, {space: s}, products.get(pid)) for pid, s in row] for row in found]

    # ---- writing ------------------------------------------------------------------------------
    @write_locked
    def add_space(
        self,
        name: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        *,
        backend: str | None = None,
        config: Any = None,
        meta: Mapping[str, Any] | None = None,
        replace: bool = False,
    ) -> VectorIndex:
        """Create space ``name`` from ``vectors`` [N, dim] of products ``ids`` (all must have metadata).

        ``backend`` defaults to :func:`choose_backend`; ``config`` is that backend's config dataclass.
        """
        if not _SPACE_NAME.match(name):
            raise ConfigError(f"bad space name {name!r}: use letters, digits, '_', '-', '.'")
        if name in self._spaces and not replace:
            raise ConfigError(f"space '{name}' exists; pass replace=True to rebuild it")
        arr = np.asarray(vectors)
        if arr.ndim != 2:
            raise ConfigError(f"space '{name}': vectors must be [N, dim], got shape {arr.shape}")
        ids = list(ids)
        labels = self.metadata.keys_of(ids)
        chosen = backend or choose_backend(len(ids), arr.shape[1])
        index = INDEX_BACKENDS.build(chosen, dim=int(arr.shape[1]), config=config)
        index.add(ids, arr, labels=labels)
        self._spaces[name] = index
        self._space_meta[name] = dict(meta or {})
        self._dirty.add(name)
        return index

    @write_locked
    def drop_space(self, name: str) -> None:
        self.space(name)
        del self._spaces[name]
        self._space_meta.pop(name, None)

    @write_locked
    def upsert_products(
        self, products: Iterable[Product], vectors_by_space: Mapping[str, SpaceVectors] | None = None
    ) -> None:
        """Add or replace products and their vectors.

        Args:
            products: new or changed products (metadata replaced whole).
            vectors_by_space: per space, an array [len(products), dim] aligned with ``products`` or an
                ``(ids, vectors)`` pair for a subset. Spaces not named keep their vectors.
        """
        products = list(products)
        pending = []
        for name, given in (vectors_by_space or {}).items():
            ids, vecs = given if isinstance(given, tuple) else ([p.id for p in products], given)
            index = self.space(name)
            pending.append((name, index, list(ids), index.check_vectors(vecs, n=len(ids))))
        known = {p.id for p in products}
        for name, _, ids, _ in pending:
            missing = [i for i in ids if i not in known and i not in self.metadata]
            if missing:
                raise ConfigError(f"space '{name}': product {missing[0]!r} has vectors but no metadata")
        self.metadata.upsert(products)
        self._metadata_dirty = True
        for name, index, ids, vecs in pending:
            index.upsert(ids, vecs, labels=self.metadata.keys_of(ids))
            self._dirty.add(name)

    @write_locked
    def remove_products(self, ids: Iterable[str]) -> int:
        """Remove products from the metadata and every space; returns how many had metadata."""
        ids = list(ids)
        for name, index in self._spaces.items():
            if index.remove(ids):
                self._dirty.add(name)
        removed = self.metadata.remove(ids)
        self._metadata_dirty = self._metadata_dirty or removed > 0
        return removed

    def save(self) -> Path:
        """Write the index atomically (see the module docstring); returns its folder.

        Searches go on while it saves; updates wait for it (it holds the read lock), and saves from
        several threads run one after the other.
        """
        root = self.path
        with self._save_lock, self._lock.read():
            root.mkdir(parents=True, exist_ok=True)
            name, partial = new_generation(root)
            previous = root / self._generation if self._generation else None
            self._write_generation(partial, previous if previous and previous.is_dir() else None)
            commit(root, partial, name, self._manifest(name))
            self._generation = name
            self._dirty.clear()
            self._metadata_dirty = False
        log.info("saved index %s (%s, %d products, spaces %s)", root, name, len(self), self.spaces())
        return root

    def _write_generation(self, dest: Path, previous: Path | None) -> None:
        (dest / SPACES).mkdir(parents=True)
        if self._metadata_dirty or previous is None or not link_files(previous, dest, [METADATA_FILE]):
            self.metadata.save(dest)
        for name, index in self._spaces.items():
            src = previous / SPACES / name if previous is not None else None
            if name in self._dirty or src is None or not link_files(src, dest / SPACES / name):
                index.save(dest / SPACES / name)
            fsync_dir(dest / SPACES / name)
        fsync_dir(dest / SPACES)
        fsync_dir(dest)


__all__ = ["ProductIndex", "SpaceVectors"]
