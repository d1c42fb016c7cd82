"""A SIMULATED click log over a catalogue, with the ground truth to measure mining against.

No real click log is available offline, so this module makes one up. It is a model, not data: the
numbers it lets you measure (mining precision) are only as good as its assumptions, listed here and in
``docs/click-logs.md``.

What it models:
    * Queries built from a random "intent" product's attributes with templates such as
      ``gender baseColour leaf`` ("men navy blue shirts"), ``usage leaf``, ``leaf`` (``leaf`` is the
      last category level, ``category1``.. a given level, any other name an attribute key).
      A product is *relevant* to a query when it has every one of the query's field values.
    * A decent search engine: per (query, A/B arm) a fixed pool of candidates (relevant products,
      same-category near misses, random others) with scores that favour relevant ones; each session
      re-ranks the pool with a little noise and shows the top ``results``.
    * Position bias: rank r is examined with probability 1 / r**eta; an examined result is clicked with
      ``click_relevant`` / ``click_near`` / ``click_other`` (noise clicks); a click leads to a cart and a
      cart to an order with some probability.
    * Sessions of 1..``queries_per_session`` queries (a share of them browsing, with an empty query),
      returning visitors, a per-visitor A/B arm, timestamps over ``days`` days.

Ground truth (:class:`GroundTruth`): the relevant products of every issued query, and every product's
*style group* (the values of ``style_fields``, by default gender + baseColour + leaf category).
Deterministic: the same catalogue and config (seed included) give the same log.
"""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from samestyle.catalog.store import Catalog
from samestyle.errors import ConfigError
from samestyle.mining.clicklog import ClickEvent, EventType, normalize_query
from samestyle.mining.pairs import PositivePair
from samestyle.types import Product

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("gender", "baseColour", "leaf"),
    ("gender", "leaf"),
    ("baseColour", "leaf"),
    ("usage", "leaf"),
    ("leaf",),
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Parameters of the simulated users and search engine (all documented in docs/click-logs.md)."""

    sessions: int = 1000
    seed: int = 0
    visitors: int | None = None  # None: sessions // 3 + 1 returning visitors
    queries_per_session: int = 3
    browse_share: float = 0.05
    templates: tuple[tuple[str, ...], ...] = DEFAULT_TEMPLATES
    template_weights: tuple[float, ...] = (3.0, 2.0, 1.0, 1.0, 1.0)
    style_fields: tuple[str, ...] = ("gender", "baseColour", "leaf")
    results: int = 20  # results shown per query
    pool_factor: float = 2.0  # each (query, A/B arm) has a fixed pool of results * pool_factor candidates
    relevant_share: float = 0.4  # of the pool: relevant products (when the query has that many)
    near_share: float = 0.3  # same leaf category, not relevant ("near misses"); the rest: random products
    ranking_strength: float = 1.0  # score bonus of a relevant product (near misses get half), noise sd 1
    session_noise: float = 0.5  # sd of the per-session re-ranking noise
    eta: float = 1.0  # P(examine rank r) = 1 / r**eta
    click_relevant: float = 0.4
    click_near: float = 0.2
    click_other: float = 0.08
    cart_given_click: float = 0.2  # a quarter of that after a click on a non-relevant product
    order_given_cart: float = 0.4
    variants: tuple[str, ...] = ("A", "B")
    start: float = 1_700_000_000.0
    days: float = 30.0


def field_value(product: Product, name: str) -> str | None:
    """``leaf``: last category level; ``categoryN``: level N (1-based); else the attribute value."""
    if name == "leaf":
        value = product.category[-1] if product.category else None
    elif name.startswith("category") and name[8:].isdigit():
        level = int(name[8:])
        value = product.category[level - 1] if 0 < level <= len(product.category) else None
    else:
        value = product.attributes.get(name)
    return value.strip() or None if value else None


@dataclass(frozen=True)
class GroundTruth:
    """What the simulator knows and a miner does not: relevance and true style groups."""

    relevant: Mapping[str, frozenset[str]]  # normalised query -> every relevant product id
    style_of: Mapping[str, str | None]  # product id -> style group key (None: a style field is missing)
    queries_of: Mapping[str, frozenset[str]] = field(default_factory=dict)  # product id -> queries

    def same_style(self, a: str, b: str) -> bool:
        sa = self.style_of.get(a)
        return sa is not None and sa == self.style_of.get(b)

    def share_query(self, a: str, b: str) -> bool:
        return bool(self.queries_of.get(a, frozenset()) & self.queries_of.get(b, frozenset()))

    def evaluate(self, pairs: Sequence[PositivePair]) -> dict[str, float]:
        """Precision of mined pairs: same style group (strict), and relevant to one issued query (lenient)."""
        n = len(pairs)
        style = [self.same_style(p.anchor_id, p.positive_id) for p in pairs]
        query = [self.share_query(p.anchor_id, p.positive_id) for p in pairs]
        total_w = sum(p.weight for p in pairs)
        style_w = sum(p.weight for p, ok in zip(pairs, style, strict=True) if ok)
        return {
            "pairs": n,
            "products": len({i for p in pairs for i in (p.anchor_id, p.positive_id)}),
            "precision_style": sum(style) / n if n else 0.0,
            "precision_query": sum(query) / n if n else 0.0,
            "precision_style_weighted": style_w / total_w if total_w else 0.0,
        }


@dataclass(frozen=True)
class SimulatedLog:
    """A simulated click log, its ground truth and a few counts (``summary``)."""

    events: list[ClickEvent]
    truth: GroundTruth
    summary: dict[str, Any]


class QueryEngine:
    """Indexes of the catalogue, the query generator and the cached result pools."""

    def __init__(self, catalog: Catalog, cfg: SimulatorConfig, rng: random.Random) -> None:
        self.cfg, self.rng, self.products = cfg, rng, catalog.products
        self.index: list[dict[tuple[str, ...], list[str]]] = [{} for _ in cfg.templates]
        self.by_leaf: dict[str, list[str]] = {}
        self.leaf_by_id = {p.id: p.category[-1] if p.category else None for p in self.products}
        self.intents: list[tuple[Product, list[int]]] = []
        for p in self.products:
            usable = []
            for t, fields in enumerate(cfg.templates):
                values = tuple(field_value(p, f) or "" for f in fields)
                if all(values):
                    self.index[t].setdefault(values, []).append(p.id)
                    usable.append(t)
            if usable:
                self.intents.append((p, usable))
            if p.category:
                self.by_leaf.setdefault(p.category[-1], []).append(p.id)
        self.ids = [p.id for p in self.products]
        self.leaves = sorted(self.by_leaf)
        self.relevant: dict[str, dict[str, None]] = {}  # query -> ordered set of relevant ids
        self.leaf_of: dict[str, str | None] = {}
        self.seen: dict[tuple[str, int], None] = {}
        self.pools: dict[tuple[str, str], list[tuple[str, float]]] = {}

    def query(self) -> str:
        product, usable = self.rng.choice(self.intents)
        t = self.rng.choices(usable, weights=[self.cfg.template_weights[i] for i in usable])[0]
        values = tuple(field_value(product, f) or "" for f in self.cfg.templates[t])
        text = normalize_query(" ".join(values))
        if text not in self.relevant:
            self.relevant[text] = {}
            self.leaf_of[text] = product.category[-1] if product.category else None
        if (text, t) not in self.seen:  # two templates may spell one query: relevant to either
            self.seen[(text, t)] = None
            self.relevant[text].update(dict.fromkeys(self.index[t][values]))
        return text

    def _sample(self, pool: Sequence[str], k: int, *exclude: Mapping[str, object]) -> list[str]:
        """Up to ``k`` distinct ids of ``pool`` not in any ``exclude`` (rejection sampling when large)."""
        if k <= 0 or not pool:
            return []
        if len(pool) <= 4 * k:
            cands = [p for p in pool if not any(p in e for e in exclude)]
            return self.rng.sample(cands, min(k, len(cands)))
        out: dict[str, None] = {}
        for _ in range(20 * k):
            pid = self.rng.choice(pool)
            if not any(pid in e for e in exclude) and pid not in out:
                out[pid] = None
                if len(out) == k:
                    break
        return list(out)

    def ranked(self, query: str, variant: str) -> list[str]:
        """This session's result list: the (query, arm) pool re-scored with session noise."""
        key = (query, variant)
        if key not in self.pools:
            self.pools[key] = self._pool(query)
        noise = self.cfg.session_noise
        scored = sorted(self.pools[key], key=lambda ps: -(ps[1] + self.rng.gauss(0.0, noise)))
        return [pid for pid, _ in scored[: self.cfg.results]]

    def _pool(self, query: str) -> list[tuple[str, float]]:
        cfg, rng = self.cfg, self.rng
        size = max(cfg.results, round(cfg.results * cfg.pool_factor))
        rel = self.relevant[query]
        relevant = self._sample(list(rel), round(size * cfg.relevant_share))
        leaf = self.leaf_of[query]
        near = self._sample(self.by_leaf.get(leaf, []) if leaf else [], round(size * cfg.near_share), rel)
        others = self._sample(self.ids, size - len(relevant) - len(near), rel, dict.fromkeys(near))
        bonus = {pid: cfg.ranking_strength for pid in relevant} | {
            pid: cfg.ranking_strength / 2 for pid in near
        }
        return [(pid, bonus.get(pid, 0.0) + rng.gauss(0.0, 1.0)) for pid in [*relevant, *near, *others]]

    def browse(self) -> list[str]:
        leaf = self.rng.choice(self.leaves)
        return self._sample(self.by_leaf[leaf], self.cfg.results)


def _session(engine: QueryEngine, sid: str, visitor: str, variant: str, t: float) -> Iterable[ClickEvent]:
    """The events of one session: per query, impressions of the list, then clicks, carts, orders."""
    cfg, rng = engine.cfg, engine.rng
    for _ in range(rng.randint(1, cfg.queries_per_session)):
        browse = rng.random() < cfg.browse_share
        query = "" if browse else engine.query()
        shown = engine.browse() if browse else engine.ranked(query, variant)
        rel = {} if browse else engine.relevant[query]
        leaf = None if browse else engine.leaf_of[query]
        for r, pid in enumerate(shown, start=1):
            yield ClickEvent(sid, query, pid, EventType.IMPRESSION, round(t, 3), r, visitor, variant)
        for r, pid in enumerate(shown, start=1):
            if rng.random() >= 1.0 / r**cfg.eta:
                continue
            near = leaf is not None and engine.leaf_by_id[pid] == leaf
            p_click = cfg.click_relevant if pid in rel else cfg.click_near if near else cfg.click_other
            if rng.random() >= p_click:
                continue
            t += rng.expovariate(1 / 20.0)
            yield ClickEvent(sid, query, pid, EventType.CLICK, round(t, 3), r, visitor, variant)
            boost = 1.0 if pid in rel else 0.25
            if rng.random() < cfg.cart_given_click * boost:
                t += rng.expovariate(1 / 60.0)
                yield ClickEvent(sid, query, pid, EventType.CART, round(t, 3), None, visitor, variant)
                if rng.random() < cfg.order_given_cart:
                    t += rng.expovariate(1 / 120.0)
                    yield ClickEvent(sid, query, pid, EventType.ORDER, round(t, 3), None, visitor, variant)
        t += rng.expovariate(1 / 45.0)


def _truth(engine: QueryEngine, catalog: Catalog) -> GroundTruth:
    relevant = {q: frozenset(ids) for q, ids in engine.relevant.items()}
    queries_of: dict[str, set[str]] = {}
    for q, ids in relevant.items():
        for pid in ids:
            queries_of.setdefault(pid, set()).add(q)
    style_of: dict[str, str | None] = {}
    for p in catalog:
        values = [field_value(p, f) for f in engine.cfg.style_fields]
        style_of[p.id] = "|".join(v for v in values if v) if all(values) else None
    return GroundTruth(relevant, style_of, {pid: frozenset(qs) for pid, qs in queries_of.items()})


def _summary(events: Sequence[ClickEvent], truth: GroundTruth, cfg: SimulatorConfig) -> dict[str, Any]:
    counts = {str(e): 0 for e in EventType}
    noise = 0
    for ev in events:
        counts[str(ev.event)] += 1
        if ev.event == EventType.CLICK and ev.query and ev.product_id not in truth.relevant[ev.query]:
            noise += 1
    return {
        "simulated": True,
        "sessions": cfg.sessions,
        "seed": cfg.seed,
        "events": len(events),
        "distinct_queries": len(truth.relevant),
        **{f"{name}s": n for name, n in counts.items()},
        "clicks_on_non_relevant": noise,
    }


def simulate_clicks(catalog: Catalog, config: SimulatorConfig | None = None) -> SimulatedLog:
    """Simulate a click log over ``catalog`` (SIMULATED data, see the module docstring).

    Args:
        catalog: the products; attributes and categories named by the templates make the queries.
        config: the simulation parameters, seed included; :class:`SimulatorConfig` defaults when None.

    Returns:
        :class:`SimulatedLog`: events sorted by time, the ground truth, and counts.

    Example:
        >>> sim = simulate_clicks(catalog, SimulatorConfig(sessions=100, seed=1))  # doctest: +SKIP
        >>> sim.truth.same_style(a, b)  # doctest: +SKIP
    """
    cfg = config or SimulatorConfig()
    if len(cfg.template_weights) != len(cfg.templates):
        raise ConfigError("simulator: template_weights needs one weight per template")
    rng = random.Random(cfg.seed)
    engine = QueryEngine(catalog, cfg, rng)
    if not engine.intents:
        fields = sorted({f for t in cfg.templates for f in t})
        raise ConfigError(f"simulator: no product has all the fields of any template ({', '.join(fields)})")
    n_visitors = cfg.visitors or cfg.sessions // 3 + 1
    events: list[ClickEvent] = []
    for s in range(cfg.sessions):
        visitor = f"v{rng.randrange(n_visitors):06d}"
        variant = cfg.variants[zlib.crc32(visitor.encode()) % len(cfg.variants)]
        start = cfg.start + rng.random() * cfg.days * 86400.0
        events.extend(_session(engine, f"s{s:07d}", visitor, variant, start))
    events.sort(key=lambda e: e.timestamp)
    truth = _truth(engine, catalog)
    summary = _summary(events, truth, cfg)
    log.info("simulated click log (not real data): %s", summary)
    return SimulatedLog(events, truth, summary)


__all__ = [
    "DEFAULT_TEMPLATES",
    "GroundTruth",
    "SimulatedLog",
    "SimulatorConfig",
    "field_value",
    "simulate_clicks",
]
