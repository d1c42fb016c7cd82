"""Metrics: hand-computed cases, and every vectorised metric against a plain-Python loop twin."""

from __future__ import annotations

import itertools
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samestyle.eval import metrics as M

# Hand case. Relevant sets: q0 {1, 2}, q1 {2}, q2 {0}; graded gains for nDCG in GAINS.
SCORES = np.array(
    [
        [0.9, 0.8, 0.3, 0.1],  # order 0,1,2,3: first relevant (1) at rank 2
        [0.2, 0.7, 0.7, 0.4],  # 1 and 2 tie at 0.7: pessimistic -> non-relevant 1 first, 2 at rank 2
        [0.5, 0.6, 0.1, 0.9],  # order 3,1,0,2: relevant 0 at rank 3
    ]
)
RELEVANT = [{1, 2}, {2}, {0}]
GAINS = np.array([[0, 2, 1, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=float)


def test_hand_ranks_recall_mrr() -> None:
    ranks = M.ranks_of_relevant(SCORES, RELEVANT)
    assert ranks.tolist() == [2.0, 2.0, 3.0]
    # R@1 = 0/3, R@2 = 2/3, R@3 = 3/3; MRR = (1/2 + 1/2 + 1/3) / 3 = 4/9
    assert M.recall_at_k(ranks, 1) == 0.0
    assert M.recall_at_k(ranks, 2) == pytest.approx(2 / 3)
    assert M.recall_at_k(ranks, 3) == 1.0
    assert M.mrr(ranks) == pytest.approx(4 / 9)
    assert M.mrr(ranks, cutoff=2) == pytest.approx(1 / 3)  # (1/2 + 1/2 + 0) / 3
    # the boolean-matrix form gives the same ranks
    assert M.ranks_of_relevant(SCORES, GAINS > 0).tolist() == [2.0, 2.0, 3.0]


def test_hand_precision_ndcg_ap() -> None:
    # P@1: top items 0 / 1 (tie, pessimistic) / 3 are all non-relevant -> 0.
    assert M.precision_at_k(SCORES, RELEVANT, 1) == 0.0
    # P@2: q0 {0,1} -> 1/2; q1 {1,2} -> 1/2; q2 {3,1} -> 0; mean 1/3
    assert M.precision_at_k(SCORES, RELEVANT, 2) == pytest.approx(1 / 3)
    # nDCG@2 (gain / log2(rank + 1)), L = log2(3):
    #   q0 ranked gains [0, 2] -> DCG 2/L, ideal [2, 1] -> 2 + 1/L
    #   q1 ranked gains [0, 1] -> DCG 1/L, ideal [1] -> 1;  q2 ranked gains [0, 0] -> 0
    lg = math.log2(3)
    expected = ((2 / lg) / (2 + 1 / lg) + 1 / lg + 0) / 3
    assert M.ndcg_at_k(SCORES, GAINS, 2) == pytest.approx(expected)  # ~0.3702
    # AP: q0 relevant at ranks 2, 3 -> (1/2 + 2/3) / 2 = 7/12; q1 rank 2 -> 1/2; q2 rank 3 -> 1/3
    assert M.average_precision(SCORES, RELEVANT) == pytest.approx((7 / 12 + 1 / 2 + 1 / 3) / 3)
    # AP@2 (trec map_cut: divide by all R): q0 (1/2)/2, q1 1/2, q2 0
    assert M.average_precision(SCORES, RELEVANT, k=2) == pytest.approx((1 / 4 + 1 / 2) / 3)
    assert M.ranked_gains(SCORES, GAINS, 2).tolist() == [[0, 2], [0, 1], [0, 0]]


def test_hand_top_k_and_exclude() -> None:
    assert M.top_k_indices(SCORES, 2).tolist() == [[0, 1], [1, 2], [3, 1]]  # tie -> lower index
    assert M.top_k_indices(SCORES, 9).shape == (3, 4)
    # excluding q0's top item (0) makes its relevant item 1 rank 1 and P@1 = 1
    ex = np.zeros((3, 4), dtype=bool)
    ex[0, 0] = True
    assert M.ranks_of_relevant(SCORES, RELEVANT, exclude=ex).tolist() == [1.0, 2.0, 3.0]
    assert M.precision_at_k(SCORES[:1], RELEVANT[:1], 1, exclude=ex[:1]) == 1.0
    # an excluded relevant item is not relevant any more
    assert M.ranks_of_relevant(SCORES[2:], [{0}], exclude=[{0}]).tolist() == [math.inf]


def test_classification_hand() -> None:
    y_true, y_pred = ["a", "a", "b", "c"], ["a", "b", "b", "a"]
    # a: TP 1, FP 1, FN 1 -> 1/2; b: TP 1, FP 1 -> 2/3; c: FN 1 -> 0; macro = 7/18
    assert M.accuracy(y_true, y_pred) == 0.5
    assert M.macro_f1(y_true, y_pred) == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert M.macro_f1(y_true, y_pred, labels=["a", "b"]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert M.sum_r({1: 0.1, 5: 0.2, 10: 0.3}, {1: 0.4, 5: 0.5, 10: 0.6}) == pytest.approx(2.1)


def test_per_class_f1_hand() -> None:
    # a: TP 1, FP 1, FN 1 -> 1/2; b: TP 1, FP 1, FN 1 -> 1/2; c: FN 1 -> 0; d: predicted once, never true -> 0
    out = M.per_class_f1(["a", "a", "b", "c", "b"], ["a", "b", "b", "a", "d"])
    assert out["classes"].tolist() == ["a", "b", "c", "d"]
    assert out["f1"].tolist() == pytest.approx([1 / 2, 1 / 2, 0.0, 0.0])
    assert out["support"].tolist() == [2, 2, 1, 0]
    assert out["predicted"].tolist() == [2, 2, 0, 1]
    # the class that only appears among the predictions counts in the macro average (scikit-learn's rule)
    assert M.macro_f1(["a", "a", "b", "c", "b"], ["a", "b", "b", "a", "d"]) == pytest.approx(1 / 4)
    only_true = M.per_class_f1(["a", "a", "b", "c", "b"], ["a", "b", "b", "a", "d"], labels=["a", "b", "c"])
    assert only_true["f1"].tolist() == pytest.approx([1 / 2, 1 / 2, 0.0])


def test_errors() -> None:
    with pytest.raises(ValueError, match="NaN"):
        M.ranks_of_relevant(np.array([[np.nan, 1.0]]), [{0}])
    with pytest.raises(ValueError, match="2-D"):
        M.top_k_indices(np.zeros(3), 1)
    with pytest.raises(ValueError, match="out of range"):
        M.precision_at_k(SCORES, [{7}, set(), set()], 1)
    with pytest.raises(ValueError, match="rows"):
        M.ranks_of_relevant(SCORES, RELEVANT[:2])


def test_top_k_dot_big_gallery_memory() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2000, 8)).astype(np.float32)
    g = rng.standard_normal((44_000, 8)).astype(np.float32)
    tracemalloc.start()
    idx, val = M.top_k_dot(q, g, 10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 300 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert idx.shape == val.shape == (2000, 10)
    for row in (0, 1234, 1999):  # slow twin: full sort of one row
        s = (q[row] @ g.T).astype(np.float64)
        assert idx[row].tolist() == np.argsort(-s, kind="stable")[:10].tolist()


# ---- loop twins -------------------------------------------------------------------------------------


def _order(s: list[float], g: list[float], keep: list[bool]) -> list[int]:
    """Reference tie rule: score desc, gain asc, index asc, over the kept items only."""
    return sorted((j for j in range(len(s)) if keep[j]), key=lambda j: (-s[j], g[j], j))


@st.composite
def ranking_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    q = draw(st.integers(1, 5))
    g = draw(st.integers(1, 8))
    scores = np.array(draw(st.lists(st.integers(0, 3), min_size=q * g, max_size=q * g)), float).reshape(q, g)
    gains = np.array(draw(st.lists(st.integers(0, 2), min_size=q * g, max_size=q * g)), float).reshape(q, g)
    exclude = np.array(draw(st.lists(st.booleans(), min_size=q * g, max_size=q * g))).reshape(q, g)
    exclude &= draw(st.booleans())  # half the cases without exclusions
    return scores, gains, exclude, draw(st.integers(1, g + 2)), draw(st.integers(1, 3))


@settings(max_examples=150, deadline=None)
@given(ranking_case())
def test_metrics_equal_loop_twins(case: tuple[np.ndarray, np.ndarray, np.ndarray, int, int]) -> None:
    scores, gains, exclude, k, chunk = case
    rel = gains > 0
    ranks_ref, p_ref, ndcg_ref, ap_ref, rg_ref = [], [], [], [], []
    for i in range(len(scores)):
        keep = [not e for e in exclude[i]]
        order = _order(list(scores[i]), list(rel[i].astype(float)), keep)
        first = next((pos + 1 for pos, j in enumerate(order) if rel[i, j]), math.inf)
        ranks_ref.append(first)
        p_ref.append(sum(rel[i, j] for j in order[:k]) / k)
        n_rel = sum(rel[i, j] for j in order)
        hits, ap = 0, 0.0
        for pos, j in enumerate(order[:k]):
            if rel[i, j]:
                hits += 1
                ap += hits / (pos + 1)
        ap_ref.append(ap / n_rel if n_rel else 0.0)
        g_order = _order(list(scores[i]), list(gains[i]), keep)
        dcg = sum(gains[i, j] / math.log2(pos + 2) for pos, j in enumerate(g_order[:k]))
        ideal = sorted((gains[i, j] for j in g_order), reverse=True)[:k]
        idcg = sum(x / math.log2(pos + 2) for pos, x in enumerate(ideal))
        ndcg_ref.append(dcg / idcg if idcg else 0.0)
        row = [gains[i, j] for j in g_order[:k]]
        rg_ref.append(row + [0.0] * (min(k, scores.shape[1]) - len(row)))
    ex = exclude if exclude.any() else None
    ranks = M.ranks_of_relevant(scores, rel, exclude=ex, chunk_rows=chunk)
    assert ranks.tolist() == ranks_ref
    assert M.precision_at_k(scores, rel, k, exclude=ex, chunk_rows=chunk) == pytest.approx(np.mean(p_ref))
    assert M.ndcg_at_k(scores, gains, k, exclude=ex, chunk_rows=chunk) == pytest.approx(np.mean(ndcg_ref))
    assert M.average_precision(scores, rel, k, exclude=ex, chunk_rows=chunk) == pytest.approx(np.mean(ap_ref))
    assert M.ranked_gains(scores, gains, k, exclude=ex, chunk_rows=chunk).tolist() == rg_ref
    top = M.top_k_indices(scores, k, chunk_rows=chunk)
    assert top.tolist() == [_order(list(s), [0.0] * len(s), [True] * len(s))[:k] for s in scores]
    # recall is a hit rate, in [0, 1], monotone in k; MRR in [0, 1]
    recalls = [M.recall_at_k(ranks, kk) for kk in range(1, scores.shape[1] + 2)]
    assert recalls == [np.mean([r <= kk for r in ranks_ref]) for kk in range(1, scores.shape[1] + 2)]
    assert all(0.0 <= a <= b <= 1.0 for a, b in itertools.pairwise(recalls))
    assert 0.0 <= M.mrr(ranks) <= 1.0
    assert M.mrr(ranks) == pytest.approx(np.mean([1 / r for r in ranks_ref]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=30))
def test_classification_equal_loop_twins(pairs: list[tuple[int, int]]) -> None:
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    f1s = []
    for c in sorted(set(y_true) | set(y_pred)):
        tp = sum(t == c and p == c for t, p in pairs)
        fp = sum(t != c and p == c for t, p in pairs)
        fn = sum(t == c and p != c for t, p in pairs)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    assert M.macro_f1(y_true, y_pred) == pytest.approx(sum(f1s) / len(f1s))
    assert M.accuracy(y_true, y_pred) == pytest.approx(sum(t == p for t, p in pairs) / len(pairs))
    assert 0.0 <= M.macro_f1(y_true, y_pred) <= 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**16))
def test_top_k_dot_equals_sort(q: int, g: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((q, 4)), rng.standard_normal((g, 4))
    idx, val = M.top_k_dot(a, b, k, chunk_rows=7)
    full = a @ b.T
    for i in range(q):
        ref = sorted(range(g), key=lambda j: (-full[i, j], j))[:k]
        assert idx[i].tolist() == ref
        assert val[i] == pytest.approx(full[i, ref])
