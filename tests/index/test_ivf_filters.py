"""faiss-ivf filtered search (cell walk) against slow twins: brute force over the decoded codes and a
cell map rebuilt from scratch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from index_helpers import pair_with_exact, recall

from samestyle.index import AllowList, ExactIndex, FaissIVFIndex, IVFConfig, VectorIndex
from samestyle.index.ivf_cells import CellMap, choose_cells


def _brute_force_over_codes(
    ivf: FaissIVFIndex, ids: list[str], queries: np.ndarray, k: int
) -> tuple[list[list[str]], np.ndarray]:
    """The slow twin: decode every allowed vector (get_vectors) and rank them all by inner product, as
    the IVF scan scores them. Returns (ids [Q][k], scores [Q, k])."""
    scores = queries @ ivf.get_vectors(ids).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[ids[j] for j in row] for row in order], np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def built() -> tuple[FaissIVFIndex, ExactIndex, list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    centres = rng.normal(size=(80, 32))
    x = centres[rng.integers(0, 80, 20_030)] + rng.normal(size=(20_030, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    vecs, queries = x[:20_000], x[20_000:]
    ivf = FaissIVFIndex(32, IVFConfig(codec="sq8", exact_filter_max=0))
    exact, ids = pair_with_exact(ivf, vecs)
    return ivf, exact, ids, vecs, queries


def test_cell_walk_covering_every_allowed_vector_is_brute_force_over_the_codes(built) -> None:
    ivf, _, ids, _, queries = built
    keep = [ids[i] for i in np.flatnonzero(np.random.default_rng(3).random(len(ids)) < 0.05)]
    old = ivf._filtered_target
    try:
        ivf._filtered_target = len(keep)  # walk every cell that holds an allowed vector
        got = ivf.search(queries, 10, ivf.allow(keep))
    finally:
        ivf._filtered_target = old
    want_ids, want_scores = _brute_force_over_codes(ivf, keep, queries, 10)
    np.testing.assert_allclose([[s for _, s in r] for r in got], want_scores, atol=1e-5)
    for g, w in zip(got, want_ids, strict=True):
        assert len({p for p, _ in g} ^ set(w)) <= 2  # at most a tie at the 10th place swapped


@pytest.mark.parametrize("share", [0.01, 0.05, 0.3])
def test_random_filters_return_k_allowed_hits_at_the_calibrated_recall(built, share: float) -> None:
    ivf, exact, ids, _, queries = built
    keep = {ids[i] for i in np.flatnonzero(np.random.default_rng(4).random(len(ids)) < share)}
    got = ivf.search(queries, 10, ivf.allow(keep))
    want = exact.search(queries, 10, exact.allow(keep))
    assert all(len(r) == 10 and {p for p, _ in r} <= keep for r in got)
    assert recall(got, want) >= 0.9


def test_category_filter_far_from_the_query_still_fills_k(built) -> None:
    """Allowed: the 300 vectors nearest one random direction; queries elsewhere must still get k hits."""
    ivf, exact, ids, vecs, queries = built
    direction = np.random.default_rng(5).normal(size=32).astype(np.float32)
    keep = {ids[i] for i in np.argsort(-(vecs @ direction))[:300]}
    got = ivf.search(queries, 10, ivf.allow(keep))
    want = exact.search(queries, 10, exact.allow(keep))
    assert all(len(r) == 10 and {p for p, _ in r} <= keep for r in got)
    assert recall(got, want) >= 0.9


def test_small_allowed_sets_are_exact_and_unknown_labels_ignored(built, monkeypatch) -> None:
    ivf, _, ids, _, queries = built
    monkeypatch.setattr(ivf, "config", dataclasses.replace(ivf.config, exact_filter_max=50))
    keep = ids[100:140]
    allowed = AllowList.from_labels([*ivf.allow(keep).labels.tolist(), 10**6])  # a label nobody has
    got = ivf.search(queries, 10, allowed)
    want_ids, want_scores = _brute_force_over_codes(ivf, keep, queries, 10)
    assert [[p for p, _ in r] for r in got] == want_ids
    np.testing.assert_allclose([[s for _, s in r] for r in got], want_scores, atol=1e-6)


def _fresh_map(ivf: FaissIVFIndex, labels: np.ndarray) -> np.ndarray:
    twin = CellMap()
    twin.build(ivf._index)
    return twin.cells(labels)


def test_cell_map_follows_adds_removes_upserts_and_reload(data, tmp_path: Path) -> None:
    vecs, queries = data(6000, 10, 16, seed=22, clusters=40)
    ivf = FaissIVFIndex(16, IVFConfig(codec="sq8", exact_filter_max=0))
    _, ids = pair_with_exact(ivf, vecs[:5000])
    ivf.search(queries, 5, ivf.allow(ids[::3]))  # builds the map
    assert ivf._cells.built
    ivf.add([f"n{i}" for i in range(1000)], vecs[5000:])
    ivf.remove(ids[:700])
    ivf.upsert(ids[1000:1200], vecs[5000:5200])
    every = np.arange(ivf._map.next_label + 5)
    np.testing.assert_array_equal(ivf._cells.cells(every), _fresh_map(ivf, every))
    keep = [f"n{i}" for i in range(0, 1000, 2)] + ids[:50]  # removed ids are simply not there
    assert all(len(r) == 5 and {p for p, _ in r} <= set(keep) - set(ids[:700]) for r in
               ivf.search(queries, 5, ivf.allow(keep)))  # fmt: skip
    ivf.save(tmp_path / "ivf")
    loaded = VectorIndex.load(tmp_path / "ivf")
    assert isinstance(loaded, FaissIVFIndex) and loaded.filtered_target == ivf.filtered_target > 0
    assert loaded.search(queries, 5, loaded.allow(keep)) == ivf.search(queries, 5, ivf.allow(keep))
    state = json.loads((tmp_path / "ivf" / "ivf.json").read_text())
    del state["filtered_target"]  # saved before filtered_target existed: the default rule applies
    (tmp_path / "ivf" / "ivf.json").write_text(json.dumps(state))
    older = VectorIndex.load(tmp_path / "ivf")
    assert all(len(r) == 5 for r in older.search(queries, 5, older.allow(keep)))


def test_sparse_labels_use_the_sorted_map(data) -> None:
    vecs, queries = data(3000, 10, 16, seed=23, clusters=20)
    ivf = FaissIVFIndex(16, IVFConfig(codec="sq8", exact_filter_max=0))
    exact = ExactIndex(16)
    labels = np.arange(3000, dtype=np.int64) * 10_000_019  # far beyond a dense array
    ids = [f"s{i}" for i in range(3000)]
    ivf.add(ids, vecs, labels=labels)
    exact.add(ids, vecs)
    keep = set(ids[::4])
    got = ivf.search(queries, 10, ivf.allow(keep))
    assert ivf._cells._sorted is not None and ivf._cells._dense is None
    assert all(len(r) == 10 and {p for p, _ in r} <= keep for r in got)
    assert recall(got, exact.search(queries, 10, exact.allow(keep))) >= 0.9
    ivf.remove(ids[:4])  # a sparse map is dropped and rebuilt on the next filtered search
    assert all(len(r) == 10 for r in ivf.search(queries, 10, ivf.allow(keep)))


def test_choose_cells_walks_non_empty_cells_best_first() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    counts = np.array([0, 3, 0, 4, 10])
    sizes = np.array([50, 5, 50, 40, 10])
    assert choose_cells(scores, counts, sizes, 2, 0).tolist() == [1]
    assert choose_cells(scores, counts, sizes, 3, 0).tolist() == [1]
    assert choose_cells(scores, counts, sizes, 4, 0).tolist() == [1, 3]
    assert choose_cells(scores, counts, sizes, 100, 0).tolist() == [1, 3, 4]  # all there is
    assert choose_cells(scores, counts, sizes, 3, 44).tolist() == [1]
    assert choose_cells(scores, counts, sizes, 3, 45).tolist() == [1, 3]  # 5 + 40 vectors fit the budget
    assert choose_cells(scores, counts, sizes, 3, 54).tolist() == [1, 3]
    assert choose_cells(scores, counts, sizes, 3, 55).tolist() == [1, 3, 4]
    assert choose_cells(scores, np.zeros(5, int), sizes, 3, 100).tolist() == []


def test_choose_cells_partial_sort_equals_the_full_walk() -> None:
    """The partial sort (argpartition of the best few cells) is only a shortcut: same cells as a walk
    over every cell sorted (the slow twin), on random inputs."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        scores = rng.normal(size=n).astype(np.float32)
        counts = rng.integers(0, 4, n) * (rng.random(n) < 0.5)
        sizes = counts + rng.integers(0, 20, n)
        need, budget = int(rng.integers(1, 60)), int(rng.integers(0, 400))
        full = np.flatnonzero(counts)
        order = full[np.argsort(-scores[full], kind="stable")]
        walk = []
        seen = scanned = 0
        for c in order:  # the rule, one cell at a time
            if seen >= min(need, counts.sum()) and scanned + sizes[c] > budget:
                break
            walk.append(int(c))
            seen, scanned = seen + counts[c], scanned + sizes[c]
        assert choose_cells(scores, counts, sizes, need, budget).tolist() == walk
