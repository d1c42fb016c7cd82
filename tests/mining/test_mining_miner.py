"""The miner on a hand-made log where every mined and every removed pair is known.

The log (``mining_fakes.hand_log``), query "men blue shirts" unless said otherwise:

* s1+s2 co-clicked in S1 and S2 (s2 carted and ordered in S2), and again for "blue shirt" in S6: kept,
  weight min(5, 6) + min(1, 1) = 6 (s1 clicked in 5 sessions: 5; s2: 1 + order 4 + 1 = 6).
* s1+w1 (S3): w1 is a women's red shirt: removed by query relevance only.
* s2+m1 (S4): m1 is in the Tshirts leaf: removed by the category constraint only.
* s1+s4, s1+s5, s4+s5 (S5): s1+s5 share 1 of 10 title tokens: removed by title similarity only;
  the other two are kept with weight 1.
* S7 is browsing (empty query), S8 clicks an unknown product: both ignored.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from mining_fakes import hand_catalog, hand_log

from samestyle.errors import ConfigError
from samestyle.mining import MiningConfig, QueryTokenOverlap, TitleJaccard, mine_pairs
from samestyle.mining.miner import stem, tokens

KEPT = {("s1", "s2"): 6.0, ("s1", "s4"): 1.0, ("s4", "s5"): 1.0}


def _pairs(result: object) -> dict[tuple[str, str], float]:
    return {(p.anchor_id, p.positive_id): p.weight for p in result.pairs}  # type: ignore[attr-defined]


def test_all_constraints_mine_exactly_the_known_pairs() -> None:
    result = mine_pairs(hand_log(), hand_catalog())
    assert _pairs(result) == KEPT
    assert (result.pairs[0].anchor_id, result.pairs[0].positive_id) == ("s1", "s2")  # strongest first
    assert {p.source for p in result.pairs} == {"click"}
    s = result.stats
    assert (s.events_read, s.click_events, s.browse_events, s.unknown_product_events) == (21, 19, 2, 1)
    assert s.queries == 2
    assert s.candidate_pairs == 15 + 1  # 6 products clicked for "men blue shirts", 2 for "blue shirt"
    assert s.dropped_support == 9
    assert (s.dropped_category, s.dropped_query_relevance, s.dropped_similarity) == (1, 1, 1)
    assert s.pairs_merged == s.pairs_kept == 3
    assert s.dropped_cap == 0


@pytest.mark.parametrize(
    ("switch", "extra"),
    [
        ("use_category", ("m1", "s2")),
        ("use_query_relevance", ("s1", "w1")),
        ("use_similarity", ("s1", "s5")),
    ],
)
def test_each_constraint_removes_exactly_its_pair(switch: str, extra: tuple[str, str]) -> None:
    result = mine_pairs(hand_log(), hand_catalog(), replace(MiningConfig(), **{switch: False}))
    assert set(_pairs(result)) == set(KEPT) | {extra}
    assert getattr(result.stats, switch.replace("use_", "dropped_")) == 0


def test_no_constraints_keeps_every_supported_pair() -> None:
    cfg = MiningConfig(use_category=False, use_query_relevance=False, use_similarity=False)
    pairs = _pairs(mine_pairs(hand_log(), hand_catalog(), cfg))
    assert set(pairs) == set(KEPT) | {("m1", "s2"), ("s1", "w1"), ("s1", "s5")}


def test_support_rules() -> None:
    co_twice = MiningConfig(min_co_sessions=2, min_product_sessions=None)
    assert _pairs(mine_pairs(hand_log(), hand_catalog(), co_twice)) == {("s1", "s2"): 5.0}
    each_twice = MiningConfig(min_co_sessions=None, min_product_sessions=2)
    assert _pairs(mine_pairs(hand_log(), hand_catalog(), each_twice)) == {("s1", "s2"): 5.0}


def test_category_depth_keeps_pairs_in_sibling_leaves() -> None:
    result = mine_pairs(hand_log(), hand_catalog(), MiningConfig(category_depth=2))
    assert ("m1", "s2") in _pairs(result)


def test_cap_keeps_the_strongest_pairs_per_product() -> None:
    result = mine_pairs(hand_log(), hand_catalog(), MiningConfig(max_pairs_per_product=1))
    assert _pairs(result) == {("s1", "s2"): 6.0, ("s4", "s5"): 1.0}
    assert (result.stats.dropped_cap, result.stats.pairs_kept) == (1, 2)


def test_event_weights_are_configurable() -> None:
    cfg = MiningConfig(click_weight=2.0)  # s1: 5 sessions x 2 = 10; s2: 2 + order 4 + 2 = 8
    assert _pairs(mine_pairs(hand_log(), hand_catalog(), cfg))[("s1", "s2")] == 8.0 + 2.0


def test_pluggable_similarity_and_query_relevance() -> None:
    seen: list[tuple[str, str]] = []

    def always(a: str, b: str) -> float:
        seen.append((a, b))
        return 1.0

    result = mine_pairs(hand_log(), hand_catalog(), similarity=always, query_relevance=lambda q, p: 1.0)
    assert set(_pairs(result)) == set(KEPT) | {("s1", "w1"), ("s1", "s5")}
    assert len(seen) == len(set(seen))  # cached: each pair scored once


def test_default_relevance_functions() -> None:
    catalog = hand_catalog()
    assert TitleJaccard(catalog)("s1", "s4") == pytest.approx(3 / 8)
    overlap = QueryTokenOverlap()
    assert overlap("men blue shirts", catalog.get("s5")) == 1.0  # via attributes and category
    assert QueryTokenOverlap(use_attributes=False)("men blue shirts", catalog.get("s5")) == pytest.approx(
        1 / 3
    )
    assert overlap("men blue shirts", catalog.get("w1")) == pytest.approx(1 / 3)
    assert [stem(t) for t in ("shirts", "watches", "dresses", "accessories", "jeans", "glass")] == [
        "shirt", "watch", "dress", "accessory", "jean", "glass"
    ]  # fmt: skip
    assert tokens("Puma Men's Polo T-Shirts") == {"puma", "men", "polo", "tshirt"}


def test_impressions_alone_mine_nothing() -> None:
    events = [e for e in hand_log() if e.event == "impression"]
    result = mine_pairs(events, hand_catalog())
    assert result.pairs == [] and result.stats.queries == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_co_sessions": None, "min_product_sessions": None},
        {"min_co_sessions": 0},
        {"max_pairs_per_product": 0},
        {"click_weight": 0.0},
    ],
)
def test_bad_config_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MiningConfig(**kwargs)  # type: ignore[arg-type]
