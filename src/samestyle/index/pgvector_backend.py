"""``pgvector``: vectors in a PostgreSQL table with the pgvector extension (HNSW, inner product).

For teams that keep vectors in a database. Point samestyle at a server with a DSN: the config's ``dsn``,
else the ``SAMESTYLE_PG_DSN`` environment variable, else a local server started with the ``pgserver``
package (PostgreSQL 16 + pgvector, on a Unix socket under ``cache_dir()/pgvector``; when run as root it
runs PostgreSQL as an unprivileged system user, as PostgreSQL requires). The DSN is written into the saved
``index.json``: keep passwords in ``~/.pgpass`` or ``PGPASSWORD``, not in the DSN.

One table per index: ``(label bigint primary key, embedding vector(dim))``. Bulk adds stream a binary
``COPY``. The HNSW index (``vector_ip_ops``) is created once the table holds ``index_min_rows`` rows
(smaller tables are scanned exactly). A saved index is a reference: ``index.json``, the id map and
``pgvector.json`` (DSN and table); the rows stay in the database.

Filters: pgvector 0.6.2 (the version ``pgserver`` ships; iterative index scans arrived in 0.8) applies a
WHERE clause *after* its HNSW scan, so a selective filter would return fewer than k rows. A filtered query
therefore takes one of two paths:

- **exact** over the allowed rows (primary-key lookups, then an ORDER BY on the distance) when the set has
  at most ``exact_filter_max`` rows, or when the widened HNSW beam (``ef_search`` is capped at 1,000)
  would hold fewer than ``filtered_hit_factor`` x k allowed rows on average, so the scan would run dry;
- **HNSW** with ``ef_search`` widened by 1 / (allowed share), the allowed set sent as a *bitmap*
  (``bytea``, one bit a label) and tested with ``get_bit`` on each candidate: O(1) a row. (With the
  labels as an array parameter, ``label = ANY($1)``, the plan changed under the caller: psycopg
  prepares a statement on its 5th run, and PostgreSQL's generic plan for it looks every allowed row
  up by primary key and sorts them, exact but linear in the allowed rows: 341 ms for 100k at 1M.)
  The scan keeps every allowed candidate of the beam, not just k. A beam of ``ef`` rows around the query
  would hold about ``E = ef x share`` allowed rows if they were spread evenly (a binomial count); when
  it holds fewer than k, or fewer than ``E - 3 sqrt(E)`` (:func:`beam_floor`), the allowed rows lie
  elsewhere (a category far from the query), the beam cannot be trusted and the query is re-run
  exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samestyle.errors import ConfigError, DependencyError
from samestyle.fsio import read_json, write_json
from samestyle.index.base import INDEX_BACKENDS, VectorIndex
from samestyle.index.labels import AllowList
from samestyle.paths import cache_dir

log = logging.getLogger(__name__)

DSN_ENV = "SAMESTYLE_PG_DSN"
STATE_FILE = "pgvector.json"
MAX_EF_SEARCH = 1000  # pgvector's limit for hnsw.ef_search
_servers: dict[str, Any] = {}


def local_server_dsn(pgdata: Path | None = None) -> str:
    """Start (or reuse) a local pgserver PostgreSQL in ``pgdata`` and return its DSN."""
    pgdata = pgdata or cache_dir() / "pgvector"
    key = str(pgdata)
    if key not in _servers:
        try:
            import pgserver
        except ImportError as exc:
            raise DependencyError(
                f"no PostgreSQL DSN given and pgserver is not installed ({exc}); set {DSN_ENV} or "
                "pip install pgserver"
            ) from None
        pgdata.mkdir(parents=True, exist_ok=True)
        _servers[key] = pgserver.get_server(pgdata, cleanup_mode="stop")
    return str(_servers[key].get_uri())


@dataclass(frozen=True)
class PgVectorConfig:
    """pgvector settings.

    Attributes:
        dsn: libpq connection string; "" = ``$SAMESTYLE_PG_DSN``, else a local pgserver.
        table: table name; "" = a fresh ``samestyle_<uuid>`` table.
        m, ef_construction: HNSW build parameters (pgvector defaults 16 / 64).
        ef_search: HNSW search beam (raised to k).
        index_min_rows: create the HNSW index once the table holds this many rows.
        exact_filter_max: filtered searches allowing at most this many rows are answered exactly: the
            primary-key query costs ~2-3 ms a 1,000 rows, about what an HNSW scan with ``ef_search``
            1,000 costs at 10,000 (20 ms vs 21 ms at 100k rows, 27 vs 32 ms at 1M; bench_scale.py).
        filtered_hit_factor: a filtered search is also answered exactly when the widened HNSW beam
            would hold fewer than this many times k allowed rows on average (0: never for this reason).
        density_check: re-run an HNSW answer exactly when its beam holds fewer allowed rows than
            :func:`beam_floor` (False: only when it is short of k).
    """

    dsn: str = ""
    table: str = ""
    m: int = 16
    ef_construction: int = 64
    ef_search: int = 100
    index_min_rows: int = 1000
    exact_filter_max: int = 10_000
    filtered_hit_factor: float = 2.0
    density_check: bool = True

    def __post_init__(self) -> None:
        if self.table and not self.table.replace("_", "").isalnum():
            raise ConfigError(f"pgvector table name must be letters, digits and _, got {self.table!r}")
        if min(self.m, self.ef_construction, self.ef_search, self.index_min_rows) < 1:
            raise ConfigError(f"pgvector m, ef_construction, ef_search, index_min_rows must be >= 1: {self}")
        if min(self.exact_filter_max, self.filtered_hit_factor) < 0:
            raise ConfigError(f"pgvector exact_filter_max and filtered_hit_factor must be >= 0: {self}")


def _copy_payload(labels: np.ndarray, vectors: np.ndarray) -> bytes:
    """A binary COPY stream of (label int8, embedding vector) rows, built with one NumPy pass."""
    n, dim = vectors.shape
    row = np.dtype(
        [("nf", ">i2"), ("l1", ">i4"), ("label", ">i8"), ("l2", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
         ("vec", ">f4", (dim,))]
    )  # fmt: skip
    rows = np.empty(n, row)
    rows["nf"], rows["l1"], rows["label"], rows["l2"] = 2, 8, labels, 4 + 4 * dim
    rows["dim"], rows["unused"], rows["vec"] = dim, 0, vectors
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows.tobytes() + b"\xff\xff"


def beam_floor(expected: float, sigmas: float = 3.0) -> float:
    """Fewest allowed rows a beam expected to hold ``expected`` of them (allowed rows spread evenly: a
    binomial count, variance <= mean) may hold before it is taken for a beam that missed them."""
    return expected - sigmas * math.sqrt(expected)


def label_bitmap(labels: np.ndarray, universe: int) -> bytes:
    """One bit a label in ``[0, universe)``, set for ``labels``, in PostgreSQL's ``get_bit`` order (bit
    ``i % 8``, counted from the least significant, of byte ``i // 8``). Labels outside are dropped."""
    mask = np.zeros(max(universe, 1), dtype=bool)
    labels = np.asarray(labels, dtype=np.int64)
    mask[labels[(labels >= 0) & (labels < universe)]] = True
    return np.packbits(mask, bitorder="little").tobytes()


class PgVectorIndex(VectorIndex):
    """A :class:`VectorIndex` whose vectors live in PostgreSQL + pgvector (see the module docstring)."""

    backend = "pgvector"
    config_class = PgVectorConfig
    config: PgVectorConfig

    def __init__(self, dim: int, config: PgVectorConfig | None = None) -> None:
        super().__init__(dim, config)
        try:
            import psycopg
        except ImportError as exc:
            raise DependencyError(
                f"the pgvector backend needs psycopg ({exc}): pip install 'psycopg[binary]'"
            ) from None
        self._dsn = self.config.dsn or os.environ.get(DSN_ENV, "") or local_server_dsn()
        if not self.config.table:  # the table name is part of the saved config, so a reload finds it
            self.config = dataclasses.replace(self.config, table=f"samestyle_{uuid.uuid4().hex[:12]}")
        self.table = self.config.table
        self._conn: Any = psycopg.connect(self._dsn, autocommit=True)
        self._conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            f"(label bigint PRIMARY KEY, embedding vector({self.dim}))"
        )
        self._has_index = self._index_exists()

    def _index_exists(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM pg_indexes WHERE tablename = %s AND indexname = %s",
            (self.table, f"{self.table}_hnsw"),
        ).fetchone()
        return row is not None

    def drop(self) -> None:
        """Delete the table (the saved reference becomes unusable)."""
        self._conn.execute(f"DROP TABLE IF EXISTS {self.table}")

    def storage_bytes(self) -> int:
        """Table + indexes on disk (PostgreSQL's ``pg_total_relation_size``)."""
        return int(self._conn.execute("SELECT pg_total_relation_size(%s)", (self.table,)).fetchone()[0])

    # ---- hooks --------------------------------------------------------------------------------
    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        payload = _copy_payload(labels, vectors)
        with (
            self._conn.cursor() as cur,
            cur.copy(f"COPY {self.table} (label, embedding) FROM STDIN BINARY") as cp,
        ):
            for start in range(0, len(payload), 1 << 24):
                cp.write(payload[start : start + (1 << 24)])

    def _after_mutation(self) -> None:
        if not self._has_index and len(self) >= self.config.index_min_rows:
            # pgvector builds the graph in memory while it fits (~1.4 KB a 256-d row with m=16), and
            # much more slowly on disk after that
            mem_mb = max(1024, math.ceil(len(self) * (4 * self.dim + 48 * self.config.m) * 1.25 / 2**20))
            self._conn.execute(f"SET maintenance_work_mem = '{mem_mb}MB'")
            self._conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self.table}_hnsw ON {self.table} USING hnsw "
                f"(embedding vector_ip_ops) WITH (m = {self.config.m}, "
                f"ef_construction = {self.config.ef_construction})"
            )
            self._has_index = True

    def _remove(self, labels: np.ndarray) -> None:
        self._conn.execute(f"DELETE FROM {self.table} WHERE label = ANY(%s)", (labels.tolist(),))

    def _get(self, labels: np.ndarray) -> np.ndarray:
        rows = self._conn.execute(
            f"SELECT label, embedding::real[] FROM {self.table} WHERE label = ANY(%s)", (labels.tolist(),)
        ).fetchall()
        by_label = {int(lab): vec for lab, vec in rows}
        return np.array([by_label[int(lab)] for lab in labels], np.float32).reshape(len(labels), self.dim)

    def _search(
        self, queries: np.ndarray, k: int, allowed: AllowList | None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(queries), k), -np.inf, np.float32)
        labels = np.full((len(queries), k), -1, np.int64)
        n_allowed = len(self) if allowed is None else len(allowed)
        ef = max(self.config.ef_search, k)
        exact, bitmap, share = False, None, 1.0
        if allowed is not None:
            share = n_allowed / max(len(self), 1)
            ef = min(MAX_EF_SEARCH, math.ceil(ef / max(share, 1e-12)))
            exact = (
                not self._has_index
                or n_allowed <= self.config.exact_filter_max
                or ef * share < self.config.filtered_hit_factor * k
            )
            if not exact:
                bitmap = label_bitmap(allowed.labels, self._map.next_label)
        with self._conn.transaction():
            self._conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            if bitmap is not None:  # the planner cannot cost the bitmap test: keep it on the HNSW scan
                self._conn.execute("SET LOCAL enable_seqscan = off")
            for i, q in enumerate(queries):
                vec = "[" + ",".join(map(repr, q.tolist())) + "]"
                if allowed is None:
                    rows = self._query_all(vec, k)
                elif exact:
                    rows = self._query_exact(vec, k, allowed)
                else:
                    assert bitmap is not None
                    rows = self._query_bitmap(vec, ef, bitmap)  # every allowed row of the beam
                    floor = beam_floor(ef * share) if self.config.density_check else 0.0
                    if len(rows) < max(min(k, n_allowed), floor):
                        rows = self._query_exact(vec, k, allowed)  # ran dry, or the beam missed them
                    rows = rows[:k]
                for j, (lab, dist) in enumerate(rows):
                    labels[i, j], scores[i, j] = lab, -dist  # <#> is the negative inner product
        return scores, labels

    def _query_all(self, vec: str, k: int) -> list[tuple[int, float]]:
        sql = f"SELECT label, embedding <#> %s::vector AS d FROM {self.table} ORDER BY d LIMIT %s"
        return list(self._conn.execute(sql, (vec, k)).fetchall())

    def _query_exact(self, vec: str, k: int, allowed: AllowList) -> list[tuple[int, float]]:
        """The planner fetches the allowed rows by primary key, then sorts them: exact."""
        sql = (
            f"SELECT label, d FROM (SELECT label, embedding <#> %s::vector AS d FROM {self.table} "
            "WHERE label = ANY(%s) OFFSET 0) s ORDER BY d LIMIT %s"
        )
        return list(self._conn.execute(sql, (vec, allowed.labels.tolist(), k)).fetchall())

    def _query_bitmap(self, vec: str, limit: int, bitmap: bytes) -> list[tuple[int, float]]:
        """HNSW candidates kept when their label's bit is set (the CASE keeps get_bit in range)."""
        sql = (
            f"SELECT label, embedding <#> %s::vector AS d FROM {self.table} "
            "WHERE CASE WHEN label < %s THEN get_bit(%s::bytea, label) ELSE 0 END = 1 ORDER BY d LIMIT %s"
        )
        # never prepared: a custom plan each time, which with enable_seqscan off is the HNSW scan
        return list(self._conn.execute(sql, (vec, 8 * len(bitmap), bitmap, limit), prepare=False).fetchall())

    # ---- persistence --------------------------------------------------------------------------
    def _save_data(self, directory: Path) -> None:
        write_json(directory / STATE_FILE, {"dsn": self.config.dsn, "table": self.table})

    def _load_data(self, directory: Path) -> None:
        state = read_json(directory / STATE_FILE)
        if state["table"] != self.table:
            raise ValueError(f"{STATE_FILE} names table {state['table']}, index.json {self.table}")
        count = int(self._conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])
        if count != len(self._map):
            raise ValueError(f"table {self.table} holds {count} rows, the id map {len(self._map)}")


INDEX_BACKENDS.register("pgvector")(PgVectorIndex)
