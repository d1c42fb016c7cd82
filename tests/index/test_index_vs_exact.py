"""Fast paths against the slow twin: FAISS flat equals exact NumPy search; HNSW recall stays high."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from index_helpers import pair_with_exact, recall

from samestyle.index import AllowList, FaissFlatIndex, FaissHNSWIndex, HNSWConfig
from samestyle.index.faiss_backend import make_selector


@pytest.mark.parametrize("keep", [None, 0.3, 0.002])
def test_flat_equals_exact(unit, keep: float | None) -> None:
    vecs = unit(3000, 48, seed=11)
    flat = FaissFlatIndex(48)
    exact, ids = pair_with_exact(flat, vecs)
    allowed = None
    if keep is not None:
        chosen = np.random.default_rng(1).random(len(ids)) < keep
        allowed = exact.allow([i for i, c in zip(ids, chosen, strict=True) if c])
    queries = unit(40, 48, seed=12)
    got, want = flat.search(queries, 10, allowed), exact.search(queries, 10, allowed)
    assert [[p for p, _ in r] for r in got] == [[p for p, _ in r] for r in want]
    np.testing.assert_allclose([[s for _, s in r] for r in got], [[s for _, s in r] for r in want], atol=1e-5)


def test_hnsw_recall_on_clustered_vectors(data) -> None:
    vecs, queries = data(5000, 200, 64, seed=21, clusters=200)
    hnsw = FaissHNSWIndex(64)  # default config
    exact, _ = pair_with_exact(hnsw, vecs)
    assert recall(hnsw.search(queries, 10), exact.search(queries, 10)) >= 0.95


@pytest.mark.parametrize(("share", "max_ef"), [(0.3, 1024), (0.05, 1024), (0.005, 32)])
def test_hnsw_graph_filter_path_and_short_result_fallback(
    data, share: float, max_ef: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Exact-subset shortcut off: the IDSelector walk runs, and queries it leaves short get exact answers."""
    caplog.set_level(logging.DEBUG, logger="samestyle.index.faiss_backend")
    vecs, queries = data(4000, 50, 32, seed=31, clusters=40)
    hnsw = FaissHNSWIndex(
        32, HNSWConfig(M=16, ef_search=32, max_filtered_ef=max_ef, exact_filter_factor=0, exact_filter_walk=0)
    )
    exact, ids = pair_with_exact(hnsw, vecs)
    chosen = np.flatnonzero(np.random.default_rng(2).random(len(ids)) < share)
    allowed_ids = {ids[i] for i in chosen}
    got = hnsw.search(queries, 10, hnsw.allow(allowed_ids))
    want = exact.search(queries, 10, exact.allow(allowed_ids))
    assert all(len(r) == 10 and {p for p, _ in r} <= allowed_ids for r in got)
    assert recall(got, want) >= 0.9
    if max_ef == 32:  # beam not widened, 20 allowed of 4000: walks ran dry; those queries went exact
        assert "short of k=10, answered exactly" in caplog.text


def test_hnsw_tombstones_hidden_and_compacted(data) -> None:
    vecs, queries = data(2000, 30, 32, seed=41, clusters=20)
    hnsw = FaissHNSWIndex(32, HNSWConfig(max_tombstone_fraction=0.5))
    exact, ids = pair_with_exact(hnsw, vecs)
    gone = ids[::5]
    hnsw.remove(gone)
    exact.remove(gone)
    moved = vecs[1000:1100]
    hnsw.upsert(ids[1:101], moved)
    exact.upsert(ids[1:101], moved)
    assert hnsw.tombstones == 400 + 80  # 400 removed + 80 replaced (the other 20 were removed already)
    got = hnsw.search(queries, 10)
    assert not {p for r in got for p, _ in r} & (set(gone) - set(ids[1:101]))
    assert recall(got, exact.search(queries, 10)) >= 0.95
    hnsw.remove(ids[2:1000])  # past the tombstone fraction: the graph is rebuilt
    exact.remove(ids[2:1000])
    assert hnsw.tombstones == 0 and len(hnsw) == len(exact)
    assert recall(hnsw.search(queries, 10), exact.search(queries, 10)) >= 0.95


def test_selector_kinds_agree() -> None:
    members = np.array([3, 17, 64, 65], np.int64)
    small = make_selector(members, 10_000)  # batch (hash set)
    large = make_selector(members, 70)  # bitmap
    for sel in (small, large):
        assert [i for i in range(100) if sel.is_member(i)] == members.tolist()
    assert 17 in AllowList.from_labels([17, 3, 3]) and 4 not in AllowList.from_labels([17, 3])
