"""Caption metrics on hand-computed cases, edge cases, and slow twins of the fast paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from samestyle.eval import captioning as C

HYP_A, REF_A = "the cat sat on the mat", "the cat sat on a mat"
HYP_B, REF_B = "the cat sat on", "The cat sat on the mat."


def test_words_lowercase_and_drop_punctuation() -> None:
    assert C.words("Puma Men's Black T-shirt.") == ["puma", "men", "s", "black", "t", "shirt"]
    assert C.words("") == []


def test_bleu_hand_case() -> None:
    # 1-grams: 'the' x2 clipped to 1 + cat sat on mat = 5/6; 2-grams 3/5 (the cat, cat sat, sat on);
    # 3-grams 2/4; 4-grams 1/3; equal lengths -> BP 1.
    b = C.corpus_bleu([HYP_A], [[REF_A]])
    assert b.precisions == pytest.approx((5 / 6, 3 / 5, 2 / 4, 1 / 3))
    assert b.brevity_penalty == 1.0
    assert b.score == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)  # 0.5373


def test_bleu_brevity_penalty_and_corpus_sums() -> None:
    short = C.corpus_bleu([HYP_B], [[REF_B]])  # all precisions 1, c = 4, r = 6
    assert short.precisions == (1.0, 1.0, 1.0, 1.0)
    assert short.score == pytest.approx(math.exp(1 - 6 / 4))
    # corpus level: counts are summed over items, not scores averaged
    both = C.corpus_bleu([HYP_A, HYP_B], [[REF_A], [REF_B]])
    assert both.precisions == pytest.approx((9 / 10, 6 / 8, 4 / 6, 2 / 4))
    assert (both.hyp_len, both.ref_len) == (10, 12)
    assert both.score == pytest.approx(math.exp(1 - 12 / 10) * (0.9 * 0.75 * 4 / 6 * 0.5) ** 0.25)


def test_bleu_closest_reference_length_ties_to_the_shorter() -> None:
    assert C.corpus_bleu(["a b c d e"], [["a b c d", "a b c d e f g"]]).ref_len == 4
    assert C.corpus_bleu(["a b c d e"], [["a b c d e f", "a b c d"]]).ref_len == 4
    # clipping takes the max count over references
    assert C.corpus_bleu(["a a b"], [["a b", "a a c"]]).precisions[0] == 1.0


def test_bleu_edge_cases() -> None:
    assert C.corpus_bleu(["red cotton shirt men"], [["Red cotton shirt, men"]]).score == pytest.approx(1.0)
    assert C.corpus_bleu([""], [["red shirt"]]).score == 0.0
    assert C.corpus_bleu(["red shirt"], [["red shirt"]]).score == 0.0  # no 4-grams, no smoothing
    assert C.corpus_bleu(["blue jeans men women"], [["red shirt for kids"]]).score == 0.0
    with pytest.raises(ValueError):
        C.corpus_bleu(["a"], [])


def test_cider_d_hand_case() -> None:
    refs = [["red shirt"], ["blue shirt"], ["blue jeans"]]
    hyps = ["red red shirt", "blue shirt", ""]
    corpus, per = C.cider_d(hyps, refs)
    big_l, a = math.log(3), math.log(3) - math.log(2)  # idf of df=1 n-grams, idf of 'shirt'/'blue' (df 2)
    # item 0, n=1: hyp (red 2L, shirt a), ref (red L, shirt a); clipped dot L*L + a*a
    v1 = (big_l**2 + a**2) / (math.sqrt(4 * big_l**2 + a**2) * math.sqrt(big_l**2 + a**2))
    # n=2: hyp (red red: L, red shirt: L), ref (red shirt: L) -> 1/sqrt(2); n=3, 4: no reference n-grams
    v2 = 1 / math.sqrt(2)
    want0 = 10 * math.exp(-(1**2) / (2 * 6**2)) * (v1 + v2) / 4  # one word longer than the reference
    assert per[0] == pytest.approx(want0)  # 3.0356
    assert per[1] == pytest.approx(10 * 2 / 4)  # identical: cosine 1 for n = 1, 2; no 3-, 4-grams
    assert per[2] == 0.0  # empty hypothesis
    assert corpus == pytest.approx((want0 + 5.0 + 0.0) / 3)


def test_cider_d_identical_long_titles_score_ten_and_shared_words_weigh_nothing() -> None:
    refs = [["puma men black running shoes"], ["nike women white sports bra"]]
    _, per = C.cider_d([r[0] for r in refs], refs)
    assert per == pytest.approx([10.0, 10.0])
    # a word in every reference has idf 0: adding it only costs through the length penalty
    refs2 = [["men black shoes x"], ["men white bra y"]]
    _, p2 = C.cider_d(["men", "men"], refs2)
    assert p2 == [0.0, 0.0]


def test_cider_d_averages_over_references() -> None:
    hyps = ["a b c d e f g h", "i j k l"]
    _, one = C.cider_d(hyps, [["a b c d e f g h"], ["i j k l"]])
    _, two = C.cider_d(hyps, [["a b c d e f g h", "z"], ["i j k l"]])
    assert one == pytest.approx([10.0, 10.0])
    assert two == pytest.approx([5.0, 10.0])  # similarity 0 with 'z', mean over the two references


def _lcs_brute(a: list[str], b: list[str]) -> int:
    for k in range(min(len(a), len(b)), 0, -1):
        subs = {tuple(a[i] for i in idx) for idx in itertools.combinations(range(len(a)), k)}
        if any(tuple(b[i] for i in idx) in subs for idx in itertools.combinations(range(len(b)), k)):
            return k
    return 0


def test_lcs_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = [str(x) for x in rng.integers(0, 4, size=rng.integers(0, 7))]
        b = [str(x) for x in rng.integers(0, 4, size=rng.integers(0, 7))]
        assert C.lcs_length(a, b) == _lcs_brute(a, b)


def test_rouge_l_hand_case_and_edges() -> None:
    # LCS('a b c d', 'a c b d e') = 3: P = 3/4, R = 3/5, F = (1 + 1.2^2) P R / (R + 1.2^2 P)
    p, r = 3 / 4, 3 / 5
    _, per = C.rouge_l(["a b c d"], [["a c b d e"]])
    assert per[0] == pytest.approx(2.44 * p * r / (r + 1.44 * p))  # 0.6536
    assert C.rouge_l(["x y"], [["X, y"]])[0] == 1.0
    assert C.rouge_l([""], [["x y"]])[0] == 0.0
    assert C.rouge_l(["q"], [["x y"]])[0] == 0.0
    # several references: best precision and best recall
    _, multi = C.rouge_l(["a b"], [["a b c d", "a"]])  # P = max(2/2, 1/2) = 1, R = max(2/4, 1/1) = 1
    assert multi[0] == 1.0


def test_caption_scores_identical_and_exact() -> None:
    refs = [["puma men black running shoes"], ["nike women white sports bra"]]
    s = C.caption_scores([r[0] for r in refs], refs)
    assert s["bleu4"] == pytest.approx(1.0) and s["rouge_l"] == 1.0 and s["exact"] == 1.0
    assert s["cider_d"] == pytest.approx(10.0)
    assert C.caption_scores(["puma men black running shoes", ""], refs)["exact"] == 0.5


def test_nearest_neighbour_uses_cosine_not_dot_and_matches_a_loop() -> None:
    train = np.array([[10.0, 0.0], [0.6, 0.8]])
    assert C.nearest_neighbour_rows(train, np.array([[0.5, 0.9]])).tolist() == [1]  # dot would pick 0
    assert C.nearest_neighbour_titles(train, ["big", "aligned"], np.array([[1.0, 0.1]])) == ["big"]
    rng = np.random.default_rng(1)
    tr, q = rng.normal(size=(50, 8)), rng.normal(size=(30, 8))
    loop = [
        max(range(len(tr)), key=lambda j, v=v: float(v @ tr[j] / np.linalg.norm(v) / np.linalg.norm(tr[j])))
        for v in q
    ]
    assert C.nearest_neighbour_rows(tr, q, batch_size=7).tolist() == loop
