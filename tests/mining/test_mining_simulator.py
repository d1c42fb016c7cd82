"""The click simulator: deterministic by seed, valid events, a coherent ground truth."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from mining_fakes import generated_catalog

from samestyle.catalog.store import Catalog
from samestyle.errors import ConfigError
from samestyle.mining import (
    EventType,
    MiningConfig,
    PositivePair,
    SimulatorConfig,
    mine_pairs,
    read_click_log,
    simulate_clicks,
    write_click_log,
)
from samestyle.mining.clicklog import normalize_query
from samestyle.mining.simulator import GroundTruth, field_value
from samestyle.types import Product

CONFIG = SimulatorConfig(sessions=300, seed=7)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return generated_catalog(per_cell=3)


def test_same_seed_same_log_other_seed_other_log(catalog: Catalog) -> None:
    a, b = simulate_clicks(catalog, CONFIG), simulate_clicks(catalog, CONFIG)
    assert a.events == b.events
    assert a.truth == b.truth and a.summary == b.summary
    c = simulate_clicks(catalog, replace(CONFIG, seed=8))
    assert c.events != a.events


def test_events_are_a_valid_log(catalog: Catalog, tmp_path: Path) -> None:
    sim = simulate_clicks(catalog, CONFIG)
    assert sim.summary["simulated"] is True
    events = sim.events
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert all(e.product_id in catalog for e in events)
    assert {e.event for e in events} == set(EventType)
    assert len({e.session_id for e in events}) == CONFIG.sessions
    shown: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in events:
        if e.event == EventType.IMPRESSION:
            assert e.position is not None and 1 <= e.position <= CONFIG.results
            shown[(e.session_id, e.query)].add(e.product_id)
        elif e.event == EventType.CLICK:
            assert e.product_id in shown[(e.session_id, e.query)]  # clicks only on what was shown
    for e in events:  # one A/B arm per visitor
        assert e.variant in CONFIG.variants
    arms = {(e.visitor_id, e.variant) for e in events}
    assert len(arms) == len({v for v, _ in arms})
    back, rejects = read_click_log(write_click_log(events, tmp_path / "sim.jsonl"))
    assert rejects == [] and back == events


def test_ground_truth_matches_the_templates(catalog: Catalog) -> None:
    sim = simulate_clicks(catalog, CONFIG)
    truth = sim.truth
    issued = {e.query for e in sim.events if e.query}
    assert issued == set(truth.relevant)
    for query, ids in truth.relevant.items():
        assert ids
        for pid in ids:  # every relevant product spells the query with one of the templates
            product = catalog.get(pid)
            spellings = {
                normalize_query(" ".join(field_value(product, f) or "" for f in t)) for t in CONFIG.templates
            }
            assert query in spellings
            assert query in truth.queries_of[pid]
    clicks = [e for e in sim.events if e.event == EventType.CLICK and e.query]
    relevant_share = sum(e.product_id in truth.relevant[e.query] for e in clicks) / len(clicks)
    assert 0.6 < relevant_share < 0.98  # mostly relevant, with noise clicks
    assert sim.summary["clicks_on_non_relevant"] == round((1 - relevant_share) * len(clicks))


def test_constraints_raise_precision_on_a_simulated_log(catalog: Catalog) -> None:
    sim = simulate_clicks(catalog, replace(CONFIG, sessions=1500))
    full = sim.truth.evaluate(mine_pairs(sim.events, catalog).pairs)
    off = MiningConfig(use_category=False, use_query_relevance=False, use_similarity=False)
    bare = sim.truth.evaluate(mine_pairs(sim.events, catalog, off).pairs)
    assert full["pairs"] > 0
    assert full["precision_style"] > bare["precision_style"]
    assert full["precision_query"] >= bare["precision_query"]


def test_evaluate_counts_by_hand() -> None:
    truth = GroundTruth(
        relevant={"q": frozenset({"a", "b", "c"})},
        style_of={"a": "x", "b": "x", "c": "y", "d": None, "e": None},
        queries_of={"a": frozenset({"q"}), "b": frozenset({"q"}), "c": frozenset({"q"})},
    )
    pairs = [PositivePair("a", "b", 3.0), PositivePair("a", "c", 1.0), PositivePair("d", "e", 1.0)]
    scores = truth.evaluate(pairs)
    assert scores["pairs"] == 3 and scores["products"] == 5
    assert scores["precision_style"] == pytest.approx(1 / 3)  # a missing style field never matches
    assert scores["precision_query"] == pytest.approx(2 / 3)
    assert scores["precision_style_weighted"] == pytest.approx(3 / 5)
    assert truth.evaluate([])["precision_style"] == 0.0


def test_field_values_and_bad_configs(catalog: Catalog) -> None:
    p = Product("x", "t", category=("A", "B", "C"), attributes={"gender": "Men", "blank": " "})
    names = ("leaf", "category1", "category3", "category4", "gender", "blank")
    assert [field_value(p, f) for f in names] == ["C", "A", "C", None, "Men", None]
    with pytest.raises(ConfigError, match="template_weights"):
        simulate_clicks(catalog, replace(CONFIG, template_weights=(1.0,)))
    bare = Catalog([Product("a", "A thing")])
    with pytest.raises(ConfigError, match="no product"):
        simulate_clicks(bare, CONFIG)
