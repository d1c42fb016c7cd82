"""A/B testing: the visitor split, the report's statistics, and the closed loop with SIMULATED visitors."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_fakes import FakeSite, make_client

from samestyle.catalog.store import read_catalog
from samestyle.cli import main
from samestyle.errors import ConfigError
from samestyle.index.product_index import ProductIndex
from samestyle.mining.clicklog import read_click_log
from samestyle.mining.events import ClickEvent, EventType
from samestyle.search.service import SearchService
from samestyle.serve import ServeSettings, VariantSpec, create_app
from samestyle.serve.abtest import ab_report, assign_variant, ratio
from samestyle.serve.visitors import VisitorConfig, simulate_visitors


def test_assignment_is_stable_balanced_and_salted() -> None:
    arms = ["A", "B", "C"]
    visitors = [f"v{i}" for i in range(9000)]
    first = [assign_variant(v, arms) for v in visitors]
    assert first == [assign_variant(v, arms) for v in visitors]
    shares = [first.count(a) / len(first) for a in arms]
    assert all(abs(s - 1 / 3) < 0.02 for s in shares), shares
    other = [assign_variant(v, arms, experiment="exp2") for v in visitors]
    assert 0.6 < sum(a != b for a, b in zip(first, other, strict=True)) / len(first) < 0.73  # ~2/3 move
    with pytest.raises(ConfigError):
        assign_variant("v", [])


def test_delta_method_matches_binomial_for_one_impression_per_visitor() -> None:
    rng = np.random.default_rng(0)
    clicks = (rng.random(20000) < 0.1).astype(float)
    r = ratio(clicks, np.ones_like(clicks))
    assert abs(r.se - math.sqrt(r.value * (1 - r.value) / 20000)) < 1e-4
    # clustered visitors (all-or-nothing clicks over 10 impressions): the interval must widen, not shrink
    per_visitor = (rng.random(2000) < 0.1).astype(float) * 10
    clustered = ratio(per_visitor, np.full(2000, 10.0))
    naive = math.sqrt(clustered.value * (1 - clustered.value) / 20000)
    assert clustered.se > 2.5 * naive
    assert ratio(np.array([]), np.array([])).value == 0.0


def _events(variant: str, visitors: int, ctr: float, seed: int) -> list[ClickEvent]:
    rng = random.Random(seed)
    out = []
    for v in range(visitors):
        for pos in range(1, 11):
            out.append(
                ClickEvent("s", "q", f"p{pos}", EventType.IMPRESSION, 0.0, pos, f"{variant}{v}", variant)
            )
            if rng.random() < ctr:
                out.append(
                    ClickEvent("s", "q", f"p{pos}", EventType.CLICK, 1.0, pos, f"{variant}{v}", variant)
                )
    out.append(ClickEvent("s", "q", "p1", EventType.ORDER, 2.0, None, f"{variant}0", variant))
    return out


def test_report_counts_and_detects_a_real_difference() -> None:
    events = (
        _events("A", 800, 0.05, 1)
        + _events("B", 800, 0.10, 2)
        + [
            ClickEvent("s", "q", "p1", EventType.CLICK, 0.0, 1, None, None)  # unassigned: ignored
        ]
    )
    report = ab_report(events, control="A")
    a, b = report.variants
    assert (a.variant, a.visitors, a.impressions, a.searches, a.orders) == ("A", 800, 8000, 800, 1)
    assert a.ctr.low < 0.05 < a.ctr.high and b.ctr.low < 0.10 < b.ctr.high
    ctr = next(c for c in report.comparisons if c.metric == "ctr")
    assert ctr.low > 0 and ctr.p_value < 1e-6 and ctr.relative > 0.5
    same = ab_report(_events("A", 800, 0.05, 1) + _events("B", 800, 0.05, 3))
    ctr = next(c for c in same.comparisons if c.metric == "ctr")
    assert ctr.low < 0 < ctr.high
    assert "| A |" in report.to_markdown() and report.to_dict()["variants"][1]["ctr"]["ci95_low"] > 0
    with pytest.raises(ConfigError, match="nothing to report"):
        ab_report([])
    with pytest.raises(ConfigError, match="control"):
        ab_report(events, control="Z")


def _random_index(site: FakeSite, path: Path) -> Path:
    """An "unrelated" baseline: the same products, random text vectors (a deliberately bad ranker)."""
    good = ProductIndex.open(site.index)
    dim = good.space("text").dim
    index = ProductIndex.create(path, read_catalog(site.catalog).products, meta=dict(good.meta))
    ids = good.metadata.ids
    vectors = np.random.default_rng(1).normal(size=(len(ids), dim)).astype(np.float32)
    index.add_space("text", ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    index.save()
    return path


def test_simulated_visitors_pick_the_better_arm_and_feed_mining(
    site: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "ab.jsonl"
    bad_index = _random_index(site, tmp_path / "random-index")
    settings = ServeSettings(
        catalog_dir=site.catalog,
        events_path=events,
        warmup=False,
        variants=(VariantSpec("random", bad_index, "text"), VariantSpec("text", site.index, "text")),
    )
    services = {"random": SearchService.open(bad_index), "text": SearchService.open(site.index)}
    with TestClient(create_app(services, settings)) as client:
        run = simulate_visitors(client, read_catalog(site.catalog), VisitorConfig(sessions=240, k=10, seed=3))
    assert run.errors == 0 and set(run.arms) == {"random", "text"}
    assert run.arms["text"].precision > 0.5 > 0.2 > run.arms["random"].precision  # offline truth

    log, rejects = read_click_log(events)
    assert not rejects and {e.variant for e in log} == {"random", "text"}
    report = ab_report(log, control="random")
    ctr = next(c for c in report.comparisons if c.metric == "ctr")
    assert ctr.variant == "text" and ctr.low > 0 and ctr.p_value < 0.001  # the better ranker wins online
    served = {v.variant: v for v in report.variants}
    assert (
        served["text"].searches == run.arms["text"].searches
        and served["text"].clicks == run.arms["text"].clicks
    )

    assert main(["ab-report", "--log", str(events), "--control", "random"]) == 0
    assert "text vs random" in capsys.readouterr().out
    pairs = tmp_path / "pairs.parquet"
    assert main(["mine", "--catalog", str(site.catalog), "--log", str(events), "--out", str(pairs)]) == 0
    assert "mined" in capsys.readouterr().out and pairs.exists()


def test_variants_need_matching_services(site: FakeSite) -> None:
    svc = SearchService.open(site.index)
    with pytest.raises(ConfigError, match="mapping"):
        create_app(svc, ServeSettings(variants=(VariantSpec("a", site.index),), warmup=False))
    with pytest.raises(ConfigError, match="no search service"):
        create_app({"a": svc}, ServeSettings(variants=(VariantSpec("b", site.index),), warmup=False))
    with make_client(site) as c:
        assert [v["name"] for v in c.get("/api/info").json()["variants"]] == ["default"]
