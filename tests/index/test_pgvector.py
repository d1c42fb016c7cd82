"""pgvector specifics on a real PostgreSQL (the shared contract is in test_index_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest

from samestyle.index import ExactIndex, PgVectorConfig, PgVectorIndex
from samestyle.index.pgvector_backend import _copy_payload


def test_binary_copy_payload_layout() -> None:
    payload = _copy_payload(np.array([7], np.int64), np.array([[0.5, -1.0]], np.float32))
    assert payload.startswith(b"PGCOPY\n\xff\r\n\x00") and payload.endswith(b"\xff\xff")
    body = payload[19:-2]
    assert body[:2] == b"\x00\x02" and int.from_bytes(body[6:14], "big") == 7
    assert np.frombuffer(body[22:], ">f4").tolist() == [0.5, -1.0]


def test_selective_filter_through_hnsw_returns_k(pg_dsn: str, data) -> None:
    """Post-filtering HNSW (pgvector 0.6.2) would come back short; the widened scan + exact rerun fill k."""
    vecs, queries = data(3000, 10, 16, seed=3, clusters=30)
    ids = [f"p{i}" for i in range(len(vecs))]
    config = PgVectorConfig(exact_filter_max=0, filtered_hit_factor=0.0, ef_search=10, index_min_rows=100)
    pg = PgVectorIndex(16, config)  # both exact shortcuts off: HNSW first, then the exact re-run
    exact = ExactIndex(16)
    pg.add(ids, vecs)
    exact.add(ids, vecs)
    keep = [ids[i] for i in np.random.default_rng(1).choice(len(ids), 30, replace=False)]
    got = pg.search(queries, 10, pg.allow(keep))
    want = exact.search(queries, 10, exact.allow(keep))
    assert [[p for p, _ in r] for r in got] == [[p for p, _ in r] for r in want]
    np.testing.assert_allclose([[s for _, s in r] for r in got], [[s for _, s in r] for r in want], atol=1e-5)
    assert pg.storage_bytes() > 3000 * 16 * 4
    pg.drop()


def test_bad_table_name() -> None:
    with pytest.raises(Exception, match="table name"):
        PgVectorConfig(table="x; DROP TABLE y")
