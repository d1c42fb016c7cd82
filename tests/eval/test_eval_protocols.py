"""Protocols: hand-computed toys, sample-100 sanity (perfect vs random), and primary-metric bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samestyle.eval import protocols as P


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_same_label_precision_hand() -> None:
    # v0=[1,0] v1=[.8,.6] v2=[.6,.8] v3=[0,1], labels a a b b. Nearest other item (self excluded):
    # q0 -> v1 (0.8, a: hit)  q1 -> v2 (0.96, b: miss)  q2 -> v1 (0.96, a: miss)  q3 -> v2 (0.8, b: hit)
    v = np.array([[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1]])
    out = P.same_label_precision(v, ["a", "a", "b", "b"], n_queries=10, k=1)
    assert out["p@1"] == pytest.approx(0.5)
    assert out["primary"] == out["p@1"]
    assert out["n_queries"] == 4
    # P@2: q0 {v1 a, v2 b} 1/2; q1 {v2 b, v0 a} 1/2; q2 {v1 a, v3 b} 1/2; q3 {v2 b, v1 a} 1/2
    assert P.same_label_precision(v, ["a", "a", "b", "b"], k=2)["p@2"] == pytest.approx(0.5)
    # ranks of the first same-label item: q0 1, q1 2 (after v2), q2 2, q3 1 -> MRR 3/4
    assert P.same_label_precision(v, ["a", "a", "b", "b"], k=2)["mrr"] == pytest.approx(0.75)


# KAGL toy: the gallery is the identity, so query i's score for doc j is Q[i, j].
GALLERY = np.eye(4)
IDS = ["d0", "d1", "d2", "d3"]
QUERIES = np.array(
    [
        [0.9, 0.1, 0.0, 0.2],  # ranking d0 d3 d1 d2
        [0.5, 0.1, 0.3, 0.0],  # ranking d0 d2 d1 d3
        [0.4, 0.3, 0.2, 0.1],  # ranking d0 d1 d2 d3
    ]
)
QRELS = {
    "red dress": {"d0": 1},  # rank 1
    "blue shirt": {"d1": 1, "d2": 1, "d3": 0},  # ranks 3 and 2 (grade 0 is not relevant)
    "green hat": {"d3": 1, "dX": 1},  # rank 4; dX is not in the gallery but still counts in R
}


def test_kagl_text_to_image_hand() -> None:
    out = P.kagl_text_to_image(QUERIES, GALLERY, IDS, QRELS, ks=(1, 3))
    # recall@1: 1/1, 0/2, 0/2 -> 1/3.  recall@3: 1, 2/2, 0/2 -> 2/3.  MRR@3: 1, 1/2, 0 -> 1/2
    assert out["recall@1"] == pytest.approx(1 / 3)
    assert out["recall@3"] == pytest.approx(2 / 3)
    assert out["hit@3"] == pytest.approx(2 / 3)
    assert out["mrr"] == pytest.approx(0.5)
    assert out["primary"] == out["avg_recall"] == pytest.approx(0.5)
    assert out["n_missing_relevant"] == 1
    # default ks (1, 10), deeper than the gallery: green hat finds d3 (1 of R=2) at rank 4
    deep = P.kagl_text_to_image(QUERIES, GALLERY, IDS, QRELS)
    assert deep["recall@10"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert deep["hit@10"] == 1.0
    assert deep["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 3)


def test_kagl_query_keys_and_int_keys() -> None:
    reordered = QUERIES[[2, 0, 1]]
    keys = ["green hat", "red dress", "blue shirt"]
    a = P.kagl_text_to_image(reordered, GALLERY, IDS, QRELS, query_keys=keys, ks=(1, 3))
    b = P.kagl_text_to_image(QUERIES, GALLERY, IDS, {i: QRELS[k] for i, k in enumerate(QRELS)}, ks=(1, 3))
    assert a == pytest.approx(b)
    assert a["recall@3"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="query_keys"):
        P.kagl_text_to_image(QUERIES[:2], GALLERY, IDS, QRELS)


def test_kagl_attribute_to_product_hand() -> None:
    out = P.kagl_attribute_to_product(QUERIES, GALLERY, IDS, QRELS, ks=(1, 3))
    # P@1: 1, 0, 0 -> 1/3.  P@3: 1/3, 2/3, 0 -> 1/3.  MRR@3 = 1/2
    assert out["p@1"] == pytest.approx(1 / 3)
    assert out["p@3"] == pytest.approx(1 / 3)
    assert out["mrr"] == pytest.approx(0.5)
    assert out["primary"] == out["avg_p"] == pytest.approx(1 / 3)


def test_weighted_doc_vectors() -> None:
    img = np.array([[1.0, 0.0], [0.0, 1.0]])
    txt = np.array([[0.0, 1.0], [0.0, -1.0]])
    out = P.weighted_doc_vectors(img, txt, (0.9, 0.1))
    assert out[0] == pytest.approx(np.array([0.9, 0.1]) / np.hypot(0.9, 0.1))  # normalised after the sum
    assert out[1] == pytest.approx([0.0, 1.0])
    assert np.isfinite(P.weighted_doc_vectors(img, -img, (0.5, 0.5))).all()  # zero sum stays finite


def _sets(n: int, per_group: int, seed: int, paired: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = _unit(rng.standard_normal((n, 64)))
    txt = img.copy() if paired else _unit(rng.standard_normal((n, 64)))
    return img, txt, np.arange(n) // per_group


def test_sample100_perfect_and_random() -> None:
    img, txt, groups = _sets(606, 101, seed=1, paired=True)
    perfect = P.sample100(img, txt, groups, draws=2)
    assert perfect["i2t_r@1"] == perfect["t2i_r@1"] == 1.0
    assert perfect["sum_r"] == perfect["primary"] == 6.0
    assert perfect["n_candidates"] == 101 and perfect["n_filled"] == 0 and perfect["n_queries"] == 606
    img, txt, groups = _sets(606, 101, seed=2, paired=False)
    rand = P.sample100(img, txt, groups)  # 5 draws x 606 queries: R@1 ~ 1/101 (sd ~0.002)
    for d in ("i2t", "t2i"):
        assert 0.002 < rand[f"{d}_r@1"] < 0.02
        assert 0.07 < rand[f"{d}_r@10"] < 0.13


def test_sample100_fill_and_score_fn() -> None:
    img, txt, _ = _sets(250, 250, seed=3, paired=True)
    groups = np.array([0] * 50 + [1] * 200)  # group 0 has only 49 other products: topped up
    out = P.sample100(img, txt, groups, n_queries=1000, draws=2)
    assert out["n_filled"] == 50  # every query is drawn (N < n_queries): all 50 of group 0
    rng = np.random.default_rng(0)
    queries = np.arange(250)
    cand, filled = P._candidates(queries, groups, 100, rng)
    assert filled == 50 and cand.shape == (250, 101) and (cand[:, 0] == queries).all()
    for row in cand:
        assert len(set(row.tolist())) == 101  # no duplicates, the query only in column 0
    assert (groups[cand[50:, 1:]] == 1).all()  # big group: negatives from the same group
    assert (groups[cand[:50, 1:50]] == 0).all()  # small group: all 49 others first, then others

    def dot(q: np.ndarray, c: np.ndarray, direction: str) -> np.ndarray:
        a, b = (img, txt) if direction == "i2t" else (txt, img)
        return np.einsum("bd,bcd->bc", a[q], b[c])

    assert P.sample100(img, txt, groups, draws=1, score_fn=dot) == P.sample100(img, txt, groups, draws=1)
    const = P.sample100(img, txt, groups, draws=1, score_fn=lambda q, c, d: np.zeros(c.shape))
    assert const["sum_r"] == 0.0  # all tied: the positive ranks last (pessimistic)


def test_group_retrieval_hand() -> None:
    gallery = np.eye(3)  # catalogue products of groups 0, 1, 2
    queries = _unit(np.array([[1.0, 0.2, 0.0], [0.9, 0.5, 0.0], [0.0, 0.3, 0.1], [1.0, 0.0, 0.0]]))
    # q0 (group 0) -> e0 first: rank 1; q1 (group 1): e0 0.9 > e1 0.5 -> rank 2;
    # q2 (group 2): e1 0.3 > e2 0.1 -> rank 2; q3 (group 7) has no relevant product: skipped
    out = P.group_retrieval(queries, [0, 1, 2, 7], gallery, [0, 1, 2], ks=(1, 2))
    assert out["r@1"] == pytest.approx(1 / 3)
    assert out["r@2"] == 1.0
    assert out["mrr"] == out["primary"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert out["n_skipped"] == 1 and out["n_queries"] == 3
    # photos vs photos: without exclude_self every query finds itself first
    photos = _unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]))
    labels = [0, 1, 0, 1]
    assert P.group_retrieval(photos, labels, photos, labels)["r@1"] == 1.0
    # with it, each photo's nearest other photo is of the other group:
    # p0: p1 .99, p3 .11, p2 0 -> rank 3;  p1: p0 .99, p3 .22 -> rank 2;  p2, p3 likewise 3 and 2
    out = P.group_retrieval(photos, labels, photos, labels, ks=(1,), exclude_self=True)
    assert out["r@1"] == 0.0
    assert out["mrr"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    assert out["n_queries"] == 4
    with pytest.raises(ValueError, match="exclude_self"):
        P.group_retrieval(photos, labels, gallery, [0, 1, 2], exclude_self=True)


def test_category_scores_hand() -> None:
    out = P.category_scores(["a", "a", "b", "c"], ["a", "b", "b", "a"])
    assert out["acc"] == out["primary"] == 0.5
    assert out["macro_f1"] == pytest.approx(7 / 18)  # (1/2 + 2/3 + 0) / 3


def test_mean_f1_grouping_shopee_toy() -> None:
    # Shopee: each posting's F1 between its predicted and true match sets (itself included), averaged.
    true = {"A": {"A", "B"}, "B": {"A", "B"}, "C": {"C"}, "D": {"D"}}
    pred = {"A": {"A", "B", "C"}, "B": {"B"}, "C": {"C"}, "D": {"C", "D"}}
    # A: 2*2/(3+2) = 4/5; B: 2*1/(1+2) = 2/3; C: 1; D: 2*1/(2+1) = 2/3 -> mean 47/60
    out = P.mean_f1_grouping(pred, true)
    assert out["mean_f1"] == out["primary"] == pytest.approx(47 / 60)
    assert out["mean_precision"] == pytest.approx((2 / 3 + 1 + 1 + 1 / 2) / 4)
    assert out["mean_recall"] == pytest.approx((1 + 1 / 2 + 1 + 1) / 4)
    # list form, self left out of the sets: include_self adds it back
    as_list = P.mean_f1_grouping([{1, 2}, set(), set(), {2}], [{1}, {0}, set(), set()])
    assert as_list["mean_f1"] == pytest.approx(47 / 60)


def test_pair_prf_hand() -> None:
    out = P.pair_prf([True, True, False, False, True], [True, False, True, False, True])
    # TP 2, FP 1, FN 1 -> P = R = F1 = 2/3; accuracy 3/5
    assert out["precision"] == out["recall"] == out["f1"] == pytest.approx(2 / 3)
    assert out["accuracy"] == pytest.approx(0.6)
    assert P.pair_prf([False, False], [True, False])["f1"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.frozensets(st.integers(0, 5)), st.frozensets(st.integers(0, 5))), min_size=1))
def test_mean_f1_grouping_loop_twin(rows: list[tuple[frozenset[int], frozenset[int]]]) -> None:
    pred, true = [set(p) for p, _ in rows], [set(t) for _, t in rows]
    ref = []
    for i, (p, t) in enumerate(zip(pred, true, strict=True)):
        p, t = p | {i}, t | {i}
        ref.append(2 * len(p & t) / (len(p) + len(t)))
    out = P.mean_f1_grouping(pred, true)["mean_f1"]
    assert out == pytest.approx(sum(ref) / len(ref))
    assert 0.0 <= out <= 1.0


def test_primary_names_match() -> None:
    rng = np.random.default_rng(0)
    v = _unit(rng.standard_normal((30, 8)))
    results = {
        "same_label_precision": P.same_label_precision(v, np.arange(30) % 3, k=5),
        "kagl_text_to_image": P.kagl_text_to_image(QUERIES, GALLERY, IDS, QRELS),
        "kagl_attribute_to_product": P.kagl_attribute_to_product(QUERIES, GALLERY, IDS, QRELS),
        "sample100": P.sample100(v, v, np.arange(30) % 2, draws=1),
        "group_retrieval": P.group_retrieval(v, np.arange(30) % 3, v, np.arange(30) % 3),
        "category_scores": P.category_scores([1, 2], [1, 1]),
        "mean_f1_grouping": P.mean_f1_grouping([{1}, {0}], [{1}, set()]),
        "pair_prf": P.pair_prf([True], [True]),
    }
    assert set(results) == set(P.PRIMARY_METRIC)
    for name, out in results.items():
        key = P.PRIMARY_METRIC[name].replace("@k", "@5")
        assert out["primary"] == out[key], name
        assert all(isinstance(v, float) for v in out.values()), name
