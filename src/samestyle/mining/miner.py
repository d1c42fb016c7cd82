"""Mine same-style positive pairs from a click log: products clicked for the same query.

The paper's "positive pairs from user click logs with category and relevance constrained"; the rules,
thresholds and weights are this project's and are spelled out in ``docs/click-logs.md`` section 3:
evidence (click 1 / cart 2 / order 4, strongest per session, summed over sessions), support (co-clicked
in ``min_co_sessions`` sessions, or each clicked in ``min_product_sessions`` sessions, for one query),
then the constraints in order (a) same category, (b) query relevance of each product, (c) product
relevance (title Jaccard or a caller's ``similarity``), each switchable for the ablation; a pair's
weight is the weaker product's weight, summed over queries; an optional per-product cap.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from samestyle.catalog.store import Catalog
from samestyle.errors import ConfigError
from samestyle.mining.clicklog import ClickEvent, EventType, normalize_query
from samestyle.mining.pairs import SOURCE_CLICK, PositivePair
from samestyle.mining.relevance import (
    QueryRelevance,
    QueryTokenOverlap,
    Similarity,
    TitleJaccard,
    jaccard,
    stem,
    tokens,
)
from samestyle.types import Product

log = logging.getLogger(__name__)

Pair = tuple[str, str]


_OPTIONAL_COUNTS = ("min_co_sessions", "min_product_sessions", "max_products_per_query",
                   "max_clicks_per_session", "category_depth", "max_pairs_per_product")  # fmt: skip


@dataclass(frozen=True)
class MiningConfig:
    """Knobs of :func:`mine_pairs`; every constraint can be switched off for the ablation."""

    click_weight: float = 1.0
    cart_weight: float = 2.0
    order_weight: float = 4.0
    min_co_sessions: int | None = 1
    min_product_sessions: int | None = 2
    max_products_per_query: int | None = 300  # bounds the min_product_sessions clique (strongest kept)
    max_clicks_per_session: int | None = 50  # a session clicking more for one query looks like a robot
    use_category: bool = True
    category_depth: int | None = None  # None: the full path (leaf category)
    use_query_relevance: bool = True
    min_query_relevance: float = 0.8
    use_similarity: bool = True
    min_similarity: float = 0.3
    max_pairs_per_product: int | None = None

    def __post_init__(self) -> None:
        if self.min_co_sessions is None and self.min_product_sessions is None:
            raise ConfigError("mining: set min_co_sessions or min_product_sessions (both are None)")
        for name in _OPTIONAL_COUNTS:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"mining: {name} must be >= 1 or None, got {value}")
        for name in ("click_weight", "cart_weight", "order_weight"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"mining: {name} must be > 0, got {getattr(self, name)}")

    def strength(self, event: EventType) -> float:
        """Weight of one event; 0 for an impression."""
        weights = {EventType.CLICK: self.click_weight, EventType.CART: self.cart_weight}
        return self.order_weight if event == EventType.ORDER else weights.get(event, 0.0)


@dataclass
class MiningStats:
    """Counts at each step. Pair counts before ``pairs_merged`` are per (query, pair)."""

    events_read: int = 0
    click_events: int = 0
    browse_events: int = 0
    unknown_product_events: int = 0
    robot_sessions: int = 0
    queries: int = 0
    candidate_pairs: int = 0
    dropped_support: int = 0
    dropped_category: int = 0
    dropped_query_relevance: int = 0
    dropped_similarity: int = 0
    pairs_merged: int = 0
    dropped_cap: int = 0
    pairs_kept: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class MiningResult:
    """The mined pairs (strongest first, ``anchor_id < positive_id``) and the step counts."""

    pairs: list[PositivePair]
    stats: MiningStats


@dataclass
class _QueryClicks:
    """Per normalised query: session -> product -> strongest event strength in that session."""

    sessions: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))

    def weights(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for clicked in self.sessions.values():
            for pid, s in clicked.items():
                out[pid] += s
        return out

    def session_counts(self) -> Counter[str]:
        return Counter(pid for clicked in self.sessions.values() for pid in clicked)


def _aggregate(
    events: Iterable[ClickEvent], catalog: Catalog, cfg: MiningConfig, stats: MiningStats
) -> dict[str, _QueryClicks]:
    by_query: dict[str, _QueryClicks] = defaultdict(_QueryClicks)
    norm_cache: dict[str, str] = {}
    for ev in events:
        stats.events_read += 1
        strength = cfg.strength(ev.event)
        if strength <= 0:
            continue
        stats.click_events += 1
        if ev.query not in norm_cache:
            norm_cache[ev.query] = normalize_query(ev.query)
        query = norm_cache[ev.query]
        if not query:
            stats.browse_events += 1
            continue
        if ev.product_id not in catalog:
            stats.unknown_product_events += 1
            continue
        clicked = by_query[query].sessions[ev.session_id]
        clicked[ev.product_id] = max(clicked.get(ev.product_id, 0.0), strength)
    stats.queries = len(by_query)
    return by_query


def _supported(
    qc: _QueryClicks, weights: dict[str, float], cfg: MiningConfig, stats: MiningStats
) -> set[Pair]:
    out: set[Pair] = set()
    if cfg.min_co_sessions is not None:
        co: Counter[Pair] = Counter()
        for clicked in qc.sessions.values():
            if cfg.max_clicks_per_session is not None and len(clicked) > cfg.max_clicks_per_session:
                stats.robot_sessions += 1
                continue
            ids = sorted(clicked)
            co.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
        out.update(k for k, c in co.items() if c >= cfg.min_co_sessions)
    if cfg.min_product_sessions is not None:
        counts = qc.session_counts()
        frequent = [p for p, c in counts.items() if c >= cfg.min_product_sessions]
        if cfg.max_products_per_query is not None and len(frequent) > cfg.max_products_per_query:
            frequent = sorted(frequent, key=lambda p: (-weights[p], p))[: cfg.max_products_per_query]
        frequent.sort()
        out.update((a, b) for i, a in enumerate(frequent) for b in frequent[i + 1 :])
    return out


class _Constraints:
    """The three constraints with their caches; ``keep`` counts what each one drops."""

    def __init__(
        self, catalog: Catalog, cfg: MiningConfig, sim: Similarity, qrel: QueryRelevance, stats: MiningStats
    ) -> None:
        self.catalog, self.cfg, self.sim, self.qrel, self.stats = catalog, cfg, sim, qrel, stats
        self._sim: dict[Pair, float] = {}
        self._rel: dict[tuple[str, str], bool] = {}

    def _relevant(self, query: str, pid: str) -> bool:
        key = (query, pid)
        if key not in self._rel:
            self._rel[key] = self.qrel(query, self.catalog.get(pid)) >= self.cfg.min_query_relevance
        return self._rel[key]

    def keep(self, query: str, a: str, b: str) -> bool:
        cfg, stats = self.cfg, self.stats
        if cfg.use_category and not _same_category(
            self.catalog.get(a), self.catalog.get(b), cfg.category_depth
        ):
            stats.dropped_category += 1
            return False
        if cfg.use_query_relevance and not (self._relevant(query, a) and self._relevant(query, b)):
            stats.dropped_query_relevance += 1
            return False
        if cfg.use_similarity:
            if (a, b) not in self._sim:
                self._sim[(a, b)] = float(self.sim(a, b))
            if self._sim[(a, b)] < cfg.min_similarity:
                stats.dropped_similarity += 1
                return False
        return True


def mine_pairs(
    events: Iterable[ClickEvent],
    catalog: Catalog,
    config: MiningConfig | None = None,
    *,
    similarity: Similarity | None = None,
    query_relevance: QueryRelevance | None = None,
) -> MiningResult:
    """Mine positive pairs: products clicked for the same query, under support and constraints.

    Args:
        events: the click log (e.g. from :func:`read_click_log`); impressions are ignored.
        catalog: the products; clicks on ids it lacks are counted and skipped.
        config: thresholds and switches; :class:`MiningConfig` defaults when None.
        similarity: ``(id_a, id_b) -> float`` product relevance; default :class:`TitleJaccard`.
        query_relevance: ``(normalised query, product) -> float``; default :class:`QueryTokenOverlap`.

    Returns:
        :class:`MiningResult` with pairs (``source="click"``, ``anchor_id < positive_id``, weight > 0)
        and :class:`MiningStats`.

    Example:
        >>> result = mine_pairs(events, catalog, MiningConfig(use_similarity=False))  # doctest: +SKIP
    """
    cfg = config or MiningConfig()
    stats = MiningStats()
    constraints = _Constraints(
        catalog, cfg, similarity or TitleJaccard(catalog), query_relevance or QueryTokenOverlap(), stats
    )
    merged: dict[Pair, float] = defaultdict(float)
    for query, qc in _aggregate(events, catalog, cfg, stats).items():
        weights = qc.weights()
        n = len(weights)
        supported = _supported(qc, weights, cfg, stats)
        stats.candidate_pairs += n * (n - 1) // 2
        stats.dropped_support += n * (n - 1) // 2 - len(supported)
        for a, b in sorted(supported):
            if constraints.keep(query, a, b):
                merged[(a, b)] += min(weights[a], weights[b])
    stats.pairs_merged = len(merged)
    pairs = _cap(merged, cfg.max_pairs_per_product)
    stats.dropped_cap = len(merged) - len(pairs)
    stats.pairs_kept = len(pairs)
    log.info("mined %d pairs: %s", len(pairs), stats.to_dict())
    return MiningResult(pairs, stats)


def _same_category(a: Product, b: Product, depth: int | None) -> bool:
    """Same category path to ``depth`` levels (all levels when None); unknown category never matches."""
    ca, cb = a.category[:depth], b.category[:depth]
    return bool(ca) and ca == cb


def _cap(merged: dict[Pair, float], cap: int | None) -> list[PositivePair]:
    """Pairs strongest first; with a cap, a pair is kept only while both products have room."""
    order = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    degree: Counter[str] = Counter()
    out: list[PositivePair] = []
    for (a, b), w in order:
        if cap is not None and (degree[a] >= cap or degree[b] >= cap):
            continue
        degree[a] += 1
        degree[b] += 1
        out.append(PositivePair(a, b, w, SOURCE_CLICK))
    return out


__all__ = [
    "MiningConfig",
    "MiningResult",
    "MiningStats",
    "QueryRelevance",
    "QueryTokenOverlap",
    "Similarity",
    "TitleJaccard",
    "jaccard",
    "mine_pairs",
    "stem",
    "tokens",
]
