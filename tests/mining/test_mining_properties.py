"""Properties of the miner on random logs: no self-pairs, unique unordered pairs, positive weights."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from samestyle.catalog.store import Catalog
from samestyle.mining import ClickEvent, EventType, MiningConfig, mine_pairs
from samestyle.types import Product

WORDS = ("blue", "red", "shirt", "shoe", "men", "women")
CATALOG = Catalog(
    [
        Product(
            f"p{i}",
            " ".join(WORDS[(i + k) % len(WORDS)] for k in range(1 + i % 3)),
            category=("A", "x" if i % 2 else "y"),
            attributes={"colour": WORDS[i % 2]},
        )
        for i in range(8)
    ]
)
PRODUCT_IDS = [*CATALOG.ids, "ghost"]

events_st = st.lists(
    st.builds(
        ClickEvent,
        session_id=st.sampled_from(["s1", "s2", "s3", "s4"]),
        query=st.sampled_from(["blue shirt", "Blue  Shirt", "red", "men shoe", ""]),
        product_id=st.sampled_from(PRODUCT_IDS),
        event=st.sampled_from(list(EventType)),
        timestamp=st.floats(0, 1e9),
        position=st.integers(1, 20),
    ),
    max_size=60,
)
config_st = st.builds(
    MiningConfig,
    min_co_sessions=st.sampled_from([1, 2]),
    min_product_sessions=st.sampled_from([None, 1, 2]),
    max_products_per_query=st.sampled_from([None, 3]),
    use_category=st.booleans(),
    category_depth=st.sampled_from([None, 1]),
    use_query_relevance=st.booleans(),
    min_query_relevance=st.sampled_from([0.0, 0.5, 1.0]),
    use_similarity=st.booleans(),
    min_similarity=st.sampled_from([0.0, 0.2, 0.5]),
    max_pairs_per_product=st.sampled_from([None, 1, 2]),
)


@settings(max_examples=150, deadline=None)
@given(events=events_st, cfg=config_st)
def test_mined_pairs_are_valid(events: list[ClickEvent], cfg: MiningConfig) -> None:
    result = mine_pairs(events, CATALOG, cfg)
    keys = [(p.anchor_id, p.positive_id) for p in result.pairs]
    assert all(a != b for a, b in keys)  # never a self-pair
    assert all(a < b for a, b in keys)  # stored once, ordered
    assert len({frozenset(k) for k in keys}) == len(keys)  # unique unordered
    assert all(math.isfinite(p.weight) and p.weight > 0 for p in result.pairs)
    assert all(a in CATALOG and b in CATALOG for a, b in keys)
    weights = [p.weight for p in result.pairs]
    assert weights == sorted(weights, reverse=True)
    if cfg.max_pairs_per_product is not None:
        degree: dict[str, int] = {}
        for a, b in keys:
            degree[a] = degree.get(a, 0) + 1
            degree[b] = degree.get(b, 0) + 1
        assert max(degree.values(), default=0) <= cfg.max_pairs_per_product
    s = result.stats
    assert s.events_read == len(events) and s.pairs_kept == len(keys)
    dropped = s.dropped_support + s.dropped_category + s.dropped_query_relevance + s.dropped_similarity
    assert s.candidate_pairs - dropped >= s.pairs_merged  # merging across queries only shrinks


@settings(max_examples=100, deadline=None)
@given(events=events_st, cfg=config_st)
def test_constraints_only_remove_pairs(events: list[ClickEvent], cfg: MiningConfig) -> None:
    loose = replace(cfg, use_category=False, use_query_relevance=False, use_similarity=False)
    strict = mine_pairs(events, CATALOG, replace(cfg, max_pairs_per_product=None))
    everything = mine_pairs(events, CATALOG, replace(loose, max_pairs_per_product=None))
    assert {p.key for p in strict.pairs} <= {p.key for p in everything.pairs}
