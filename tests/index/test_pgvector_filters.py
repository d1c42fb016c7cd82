"""pgvector's filtered paths on a real PostgreSQL: the allow-list bitmap (``get_bit``) on the HNSW scan,
and the rule that sends filters too selective for the widest beam straight to the exact query."""

from __future__ import annotations

import numpy as np
import pytest
from index_helpers import recall

from samestyle.index import ExactIndex, PgVectorConfig, PgVectorIndex
from samestyle.index.pgvector_backend import beam_floor, label_bitmap


def test_label_bitmap_layout_without_a_server() -> None:
    bits = label_bitmap(np.array([0, 3, 8, 15, 99]), universe=16)  # 99 is outside: dropped
    assert bits == bytes([0b00001001, 0b10000001])
    assert label_bitmap(np.array([], np.int64), universe=0) == b"\x00"


def test_label_bitmap_matches_postgres_get_bit(pg_dsn: str) -> None:
    import psycopg

    labels = np.array([1, 2, 9, 31, 64, 1000])
    bits = label_bitmap(labels, universe=1001)
    with psycopg.connect(pg_dsn) as conn:
        got = conn.execute(
            "SELECT n FROM generate_series(0, 1000) n WHERE get_bit(%s::bytea, n) = 1", (bits,)
        ).fetchall()
    assert [n for (n,) in got] == labels.tolist()


@pytest.fixture
def filled(pg_dsn: str, data):
    vecs, queries = data(3000, 20, 16, seed=11, clusters=30)
    ids = [f"p{i}" for i in range(len(vecs))]
    pg = PgVectorIndex(
        16, PgVectorConfig(exact_filter_max=0, filtered_hit_factor=0.0, ef_search=40, index_min_rows=100)
    )
    exact = ExactIndex(16)
    pg.add(ids, vecs)
    exact.add(ids, vecs)
    yield pg, exact, ids, queries
    pg.drop()


def test_large_filter_runs_on_hnsw_with_the_bitmap(filled, monkeypatch) -> None:
    """30% allowed: the HNSW path (never the exact query), every hit allowed, k hits, recall vs exact."""
    pg, exact, ids, queries = filled
    keep = {ids[i] for i in np.flatnonzero(np.random.default_rng(2).random(len(ids)) < 0.3)}
    monkeypatch.setattr(pg, "_query_exact", lambda *a: pytest.fail("took the exact path"))
    got = pg.search(queries, 10, pg.allow(keep))
    want = exact.search(queries, 10, exact.allow(keep))
    assert all(len(r) == 10 and {p for p, _ in r} <= keep for r in got)
    assert recall(got, want) >= 0.95
    for g, w in zip(got, want, strict=True):  # same scores where the same ids come back
        ws = dict(w)
        assert all(abs(s - ws[p]) < 1e-5 for p, s in g if p in ws)


def test_bitmap_query_plan_uses_the_hnsw_index(filled) -> None:
    pg, _, _, queries = filled
    vec = "[" + ",".join(map(repr, queries[0].tolist())) + "]"
    bits = label_bitmap(np.arange(0, 3000, 3), pg._map.next_label)
    with pg._conn.transaction():
        pg._conn.execute("SET LOCAL enable_seqscan = off")
        plan = pg._conn.execute(
            f"EXPLAIN SELECT label, embedding <#> %s::vector AS d FROM {pg.table} "
            "WHERE CASE WHEN label < %s THEN get_bit(%s::bytea, label) ELSE 0 END = 1 ORDER BY d LIMIT 10",
            (vec, 8 * len(bits), bits),
        ).fetchall()
    assert f"{pg.table}_hnsw" in "\n".join(row[0] for row in plan)


def test_labels_beyond_the_bitmap_are_never_returned(filled) -> None:
    """Rows the allow-list does not cover: one added after it was made, and one the id map does not know
    whose label lies past the bitmap (get_bit would fail on it without the CASE guard)."""
    pg, _, ids, queries = filled
    allowed = pg.allow(ids[::2])
    pg.add(["late"], queries[:1], labels=[50_000])  # the best possible hit for query 0, not allowed
    vec = "[" + ",".join(map(repr, queries[1].tolist())) + "]"
    pg._conn.execute(f"INSERT INTO {pg.table} (label, embedding) VALUES (%s, %s::vector)", (10**7, vec))
    got = pg.search(queries[:2], 5, allowed)
    assert all(len(r) == 5 and {p for p, _ in r} <= set(ids[::2]) for r in got)


def test_too_selective_for_the_beam_goes_straight_to_exact(pg_dsn: str, data, monkeypatch) -> None:
    vecs, queries = data(3000, 5, 16, seed=12, clusters=30)
    ids = [f"p{i}" for i in range(len(vecs))]
    pg = PgVectorIndex(16, PgVectorConfig(exact_filter_max=0, ef_search=40, index_min_rows=100))
    exact = ExactIndex(16)
    pg.add(ids, vecs)
    exact.add(ids, vecs)
    keep = ids[:60]  # 2%: the widest beam (1,000) holds ~20 allowed rows on average, < 2 x k = 30
    monkeypatch.setattr(pg, "_query_bitmap", lambda *a: pytest.fail("took the HNSW path"))
    got = pg.search(queries, 15, pg.allow(keep))
    want = exact.search(queries, 15, exact.allow(keep))
    assert [[p for p, _ in r] for r in got] == [[p for p, _ in r] for r in want]
    pg.drop()


def test_allow_list_far_from_the_query_is_re_run_exactly(filled, monkeypatch) -> None:
    """A concentrated allow-list away from the queries (a category): a beam holding k allowed rows but
    far fewer than ef x share (here 400 x 10% = 40, floor 40 - 3 sqrt 40 = 21) is not trusted and the
    query is re-run exactly; the answers equal exact search."""
    pg, exact, ids, queries = filled
    vecs = exact.get_vectors(ids)
    keep = {ids[i] for i in np.argsort(-(vecs @ -queries.mean(axis=0)))[:300]}  # 10%, away from the queries
    beams, reruns = [], []
    query_bitmap, query_exact = pg._query_bitmap, pg._query_exact
    monkeypatch.setattr(pg, "_query_bitmap", lambda *a: beams.append(query_bitmap(*a)) or beams[-1])
    monkeypatch.setattr(pg, "_query_exact", lambda *a: reruns.append(1) or query_exact(*a))
    got = pg.search(queries, 10, pg.allow(keep))
    want = exact.search(queries, 10, exact.allow(keep))
    assert [[p for p, _ in r] for r in got] == [[p for p, _ in r] for r in want]
    held = [len(b) for b in beams]
    floor = beam_floor(40.0)
    assert 21 < floor < 22 and len(reruns) == sum(h < floor for h in held)
    assert any(10 <= h < floor for h in held), held  # re-run although the beam had k allowed rows
