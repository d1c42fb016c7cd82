"""An append-only on-disk cache of feature vectors keyed by ``(product_id, content_hash)``.

Layout of ``<root>/<encoder name, '/' -> '__'>/``::

    manifest.json                 encoder name, dim, the list of committed shards (rows, byte sizes)
    part-00000.npy                vectors [rows, dim], float32 (or float16, see below)
    part-00000.keys.parquet       product_id, content_hash for each row, same order
    .lock                         advisory lock file (writers exclusive, readers shared)

Every file is written atomically and ``manifest.json`` last: a shard exists for readers only once the
manifest lists it, so a process killed mid-``put`` leaves the last good state (plus an orphan file that
``compact`` removes). A listed shard that is missing, truncated or of the wrong shape is skipped with a
warning; its keys simply read as "not found" and get recomputed. Later shards win when a key repeats.

A product whose image or text changes gets a new content hash, hence a new entry; the old one stays
until ``compact(live_keys)`` rewrites everything into one shard, keeping only the live keys.

``dtype="float16"`` halves the disk size, meant for big feature maps (``[1280, 7, 7]`` flattened to
62 720 values a row); pooled vectors stay float32. Shards are memory-mapped, and ``lookup`` always returns
float32.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from samestyle.errors import ArtifactError
from samestyle.fsio import atomic_path, read_json, write_json

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
Key = tuple[str, str]
_CHUNK = 1024  # rows copied at a time when writing a shard


@dataclass
class _Shard:
    name: str
    vectors: np.ndarray  # [rows, dim], memory-mapped
    keys: list[Key]


def _slug(encoder_name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in encoder_name.replace("/", "__"))


class FeatureCache:
    """Feature vectors of one encoder, stored under ``root/<encoder name slug>/``.

    Args:
        root: cache root (shared by encoders; each gets its own folder).
        encoder_name: the encoder's stable ``name``; recorded and checked.
        dim: vector length (flatten maps first); checked against an existing cache.
        dtype: "float32" (default) or "float16" for newly written shards.

    Example:
        >>> cache = FeatureCache(tmp_path, "fake-text/bow/v1-d32", 32)  # doctest: +SKIP
        >>> cache.put([("p1", "abc")], np.ones((1, 32), np.float32))  # doctest: +SKIP
        >>> cache.lookup([("p1", "abc"), ("p2", "def")])[1]  # doctest: +SKIP
        array([ True, False])
    """

    def __init__(self, root: Path, encoder_name: str, dim: int, dtype: str = "float32") -> None:
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        self.dir = Path(root) / _slug(encoder_name)
        self.encoder_name = encoder_name
        self.dim = dim
        self.dtype = dtype
        self._shards: dict[str, _Shard] = {}
        self._index: dict[Key, tuple[str, int]] = {}
        self._broken: set[str] = set()
        with self._lock(shared=True):
            self._refresh()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    # -- reading ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, shared: bool) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: single-writer use only
            yield
            return
        with open(self.dir / ".lock", "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _read_manifest(self) -> dict:
        path = self.dir / MANIFEST
        empty = {
            "format_version": FORMAT_VERSION,
            "encoder_name": self.encoder_name,
            "dim": self.dim,
            "shards": [],
            "next_part": 0,
        }
        if not path.exists():
            return empty
        try:
            manifest = read_json(path)
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("feature cache %s: unreadable manifest (%s); starting empty", path, exc)
            return empty
        if manifest.get("dim") != self.dim or manifest.get("encoder_name") != self.encoder_name:
            raise ArtifactError(
                f"{path}: holds {manifest.get('encoder_name')!r} vectors of dim {manifest.get('dim')}, "
                f"not {self.encoder_name!r} of dim {self.dim}; delete {self.dir} or use another root"
            )
        return dict(manifest)

    def _open_shard(self, entry: dict) -> _Shard:
        """Open one listed shard; raises on anything missing, truncated or inconsistent."""
        name, rows = entry["name"], int(entry["rows"])
        vec_path, key_path = self.dir / f"{name}.npy", self.dir / f"{name}.keys.parquet"
        if vec_path.stat().st_size != entry["vector_bytes"]:
            raise ValueError(
                f"{vec_path.name} is {vec_path.stat().st_size} bytes, expected {entry['vector_bytes']}"
            )
        vectors = np.load(vec_path, mmap_mode="r", allow_pickle=False)
        if vectors.shape != (rows, self.dim):
            raise ValueError(f"{vec_path.name} has shape {vectors.shape}, expected {(rows, self.dim)}")
        table = pq.read_table(key_path)
        if table.num_rows != rows:
            raise ValueError(f"{key_path.name} has {table.num_rows} rows, expected {rows}")
        keys = list(zip(table["product_id"].to_pylist(), table["content_hash"].to_pylist(), strict=True))
        return _Shard(name, vectors, keys)

    def _refresh(self) -> dict:
        """Load shards the manifest lists that are not loaded yet. Returns the manifest."""
        manifest = self._read_manifest()
        for entry in manifest["shards"]:
            name = entry["name"]
            if name in self._shards or name in self._broken:
                continue
            try:
                shard = self._open_shard(entry)
            except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
                self._broken.add(name)
                logger.warning(
                    "feature cache %s: ignoring damaged shard %s (%s); its %s vectors will be recomputed",
                    self.dir,
                    name,
                    exc,
                    entry.get("rows", "?"),
                )
                continue
            self._shards[name] = shard
            for row, key in enumerate(shard.keys):
                self._index[key] = (name, row)
        return manifest

    def lookup(self, keys: Sequence[Key]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``keys``. Returns ``vectors [N, dim]`` float32 (zero rows where missing) and
        ``found [N]`` bool."""
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        by_shard: dict[str, tuple[list[int], list[int]]] = {}
        for i, key in enumerate(keys):
            hit = self._index.get((key[0], key[1]))
            if hit is not None:
                dst, src = by_shard.setdefault(hit[0], ([], []))
                dst.append(i)
                src.append(hit[1])
        for name, (dst, src) in by_shard.items():
            out[dst] = self._shards[name].vectors[src]
            found[dst] = True
        return out, found

    # -- writing ------------------------------------------------------------------------------------

    def _next_name(self, manifest: dict) -> str:
        n = int(manifest.get("next_part", 0))
        while any(self.dir.glob(f"part-{n:05d}.*")):  # an orphan from a killed writer
            n += 1
        manifest["next_part"] = n + 1
        return f"part-{n:05d}"

    def _write_shard(self, name: str, keys: Sequence[Key], rows: Callable[[int, int], np.ndarray]) -> dict:
        """Write one shard's two files atomically, its vectors ``rows(start, stop)`` chunk by chunk (so a
        compaction of big maps never holds them all in memory). Returns its manifest entry."""
        vec_path = self.dir / f"{name}.npy"
        with atomic_path(vec_path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.dtype, shape=(len(keys), self.dim))
            for start in range(0, len(keys), _CHUNK):
                stop = min(start + _CHUNK, len(keys))
                out[start:stop] = rows(start, stop)
            out.flush()
            del out
        table = pa.table(
            {"product_id": [k[0] for k in keys], "content_hash": [k[1] for k in keys]},
            schema=pa.schema([("product_id", pa.string()), ("content_hash", pa.string())]),
        )
        with atomic_path(self.dir / f"{name}.keys.parquet") as tmp:
            pq.write_table(table, tmp)
        return {"name": name, "rows": len(keys), "vector_bytes": vec_path.stat().st_size}

    def _commit(self, manifest: dict, entries: list[dict]) -> None:
        manifest = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "encoder_name": self.encoder_name,
            "dim": self.dim,
            "shards": entries,
        }
        write_json(self.dir / MANIFEST, manifest)

    def put(self, keys: Sequence[Key], vectors: np.ndarray) -> None:
        """Append ``vectors [N, dim]`` for ``keys`` as one new shard (a no-op when N is 0)."""
        vectors = np.asarray(vectors)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"put: vectors have shape {vectors.shape}, expected {(len(keys), self.dim)}")
        if not len(keys):
            return
        keys = [(str(k[0]), str(k[1])) for k in keys]
        with self._lock(shared=False):
            manifest = self._refresh()
            name = self._next_name(manifest)
            entry = self._write_shard(name, keys, lambda a, b: vectors[a:b])
            live = [e for e in manifest["shards"] if e["name"] not in self._broken]
            self._commit(manifest, [*live, entry])
            self._refresh()

    def compact(self, live_keys: Iterable[Key] | None = None) -> int:
        """Rewrite the cache as one shard, keeping the newest vector of each key (only ``live_keys``
        when given), and delete every other shard file. Returns the number of rows kept."""
        with self._lock(shared=False):
            manifest = self._refresh()
            wanted = None if live_keys is None else {(str(a), str(b)) for a, b in live_keys}
            keys = [k for k in self._index if wanted is None or k in wanted]
            entries = []
            if keys:
                name = self._next_name(manifest)
                entries.append(self._write_shard(name, keys, lambda a, b: self.lookup(keys[a:b])[0]))
            self._commit(manifest, entries)
            keep = {f"{e['name']}{suffix}" for e in entries for suffix in (".npy", ".keys.parquet")}
            for path in [*self.dir.glob("part-*"), *self.dir.glob(".part-*.tmp")]:
                if path.name not in keep:
                    path.unlink(missing_ok=True)
            self._shards, self._index, self._broken = {}, {}, set()
            self._refresh()
        logger.info("feature cache %s: compacted to %d rows", self.dir, len(keys))
        return len(keys)


__all__ = ["FeatureCache", "Key"]
