"""Online A/B testing: a stable visitor -> variant split, and the per-variant report with intervals.

Assignment: ``sha256(experiment + ":" + visitor_id)`` read as a number in [0, 1) picks the arm, so a
visitor keeps one arm across sessions and restarts, and a new experiment name re-randomises everyone.

Report (:func:`ab_report`): per variant, CTR (clicks / impressions), cart rate and conversion (orders)
per search, each a ratio of sums over visitors. The randomisation unit is the visitor, and one visitor's
events are not independent, so the 95% intervals use the delta method on per-visitor sums (Deng et al.,
"Applying the Delta Method in Metric Analytics", 2018), not a per-impression binomial interval, which
would be too narrow. The comparison of each arm with the control gives the difference, its interval and
a two-sided p-value (normal approximation; fine for the thousands of visitors an A/B test needs).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from samestyle.errors import ConfigError
from samestyle.mining.events import ClickEvent, EventType

Z95 = 1.959963984540054


def assign_variant(visitor_id: str, variants: Sequence[str], experiment: str = "exp1") -> str:
    """The arm of ``visitor_id``: a stable hash bucket, equal shares.

    Example:
        >>> assign_variant("v42", ["A", "B"]) == assign_variant("v42", ["A", "B"])
        True
    """
    if not variants:
        raise ConfigError("assign_variant needs at least one variant")
    digest = hashlib.sha256(f"{experiment}:{visitor_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2.0**64
    return variants[min(int(bucket * len(variants)), len(variants) - 1)]


@dataclass(frozen=True)
class Ratio:
    """A ratio of sums over visitors with its delta-method standard error and 95% interval."""

    value: float
    se: float
    numerator: int
    denominator: int

    @property
    def low(self) -> float:
        return self.value - Z95 * self.se

    @property
    def high(self) -> float:
        return self.value + Z95 * self.se

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "ci95_low": self.low, "ci95_high": self.high}


def ratio(num: np.ndarray, den: np.ndarray) -> Ratio:
    """sum(num) / sum(den) over visitors, SE by the delta method: var(num - r*den) / (n * mean(den)^2)."""
    n = len(num)
    total_den = float(den.sum())
    if n == 0 or total_den == 0:
        return Ratio(0.0, 0.0, int(num.sum()), int(total_den))
    r = float(num.sum()) / total_den
    if n < 2:
        return Ratio(r, math.inf, int(num.sum()), int(total_den))
    resid = num - r * den
    se = math.sqrt(float(resid.var(ddof=1)) / n) / (total_den / n)
    return Ratio(r, se, int(num.sum()), int(total_den))


@dataclass(frozen=True)
class VariantReport:
    variant: str
    visitors: int
    searches: int
    impressions: int
    clicks: int
    carts: int
    orders: int
    ctr: Ratio  # clicks / impressions
    cart_rate: Ratio  # carts / searches
    conversion: Ratio  # orders / searches


@dataclass(frozen=True)
class Comparison:
    """``variant`` minus the control on one metric: the difference, its 95% interval, a p-value."""

    variant: str
    control: str
    metric: str
    diff: float
    low: float
    high: float
    p_value: float
    relative: float  # diff / control value (0 when the control is 0)


def _per_visitor(events: Iterable[ClickEvent]) -> dict[str, dict[str, np.ndarray]]:
    counts: dict[str, dict[str, list[int]]] = {}
    for ev in events:
        if ev.variant is None or ev.visitor_id is None:
            continue
        row = counts.setdefault(ev.variant, {}).setdefault(ev.visitor_id, [0, 0, 0, 0, 0])
        if ev.event == EventType.IMPRESSION:
            row[0] += 1
            row[1] += ev.position == 1  # one list = one search: its first position
        elif ev.event == EventType.CLICK:
            row[2] += 1
        elif ev.event == EventType.CART:
            row[3] += 1
        elif ev.event == EventType.ORDER:
            row[4] += 1
    out: dict[str, dict[str, np.ndarray]] = {}
    for variant, by_visitor in counts.items():
        arr = np.asarray(list(by_visitor.values()), dtype=np.float64).reshape(-1, 5)
        names = ("impressions", "searches", "clicks", "carts", "orders")
        out[variant] = {name: arr[:, i] for i, name in enumerate(names)}
    return out


def _compare(a: Ratio, control: Ratio, variant: str, control_name: str, metric: str) -> Comparison:
    diff = a.value - control.value
    se = math.hypot(a.se, control.se)
    p = math.erfc(abs(diff) / se / math.sqrt(2)) if se > 0 and math.isfinite(se) else 1.0
    rel = diff / control.value if control.value else 0.0
    return Comparison(variant, control_name, metric, diff, diff - Z95 * se, diff + Z95 * se, p, rel)


@dataclass(frozen=True)
class ABReport:
    variants: list[VariantReport]
    comparisons: list[Comparison]

    def to_dict(self) -> dict[str, Any]:
        def variant_dict(v: VariantReport) -> dict[str, Any]:
            d = asdict(v)
            for key in ("ctr", "cart_rate", "conversion"):
                d[key] = getattr(v, key).to_dict()
            return d

        return {
            "variants": [variant_dict(v) for v in self.variants],
            "comparisons": [asdict(c) for c in self.comparisons],
        }

    def to_markdown(self) -> str:
        lines = [
            "| variant | visitors | searches | impressions | clicks | orders | CTR (95% CI) | "
            "conversion / search (95% CI) |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for v in self.variants:
            lines.append(
                f"| {v.variant} | {v.visitors:,} | {v.searches:,} | {v.impressions:,} | {v.clicks:,} | "
                f"{v.orders:,} | {_pct(v.ctr)} | {_pct(v.conversion)} |"
            )
        if self.comparisons:
            lines += [
                "",
                "| comparison | metric | difference (95% CI) | relative | p-value |",
                "|---|---|---|---:|---:|",
            ]
            for c in self.comparisons:
                lines.append(
                    f"| {c.variant} vs {c.control} | {c.metric} | {100 * c.diff:+.2f} pp "
                    f"[{100 * c.low:+.2f}, {100 * c.high:+.2f}] | {100 * c.relative:+.1f}% "
                    f"| {c.p_value:.2g} |"
                )
        return "\n".join(lines)


def _pct(r: Ratio) -> str:
    return f"{100 * r.value:.2f}% [{100 * r.low:.2f}, {100 * r.high:.2f}]"


def ab_report(events: Iterable[ClickEvent], control: str | None = None) -> ABReport:
    """Per-variant CTR, cart rate and conversion with 95% intervals, and each arm against the control.

    Args:
        events: click-log events; those without a variant or a visitor id are ignored.
        control: the baseline arm (default: the first variant in sorted order).
    """
    data = _per_visitor(events)
    if not data:
        raise ConfigError("no event carries a variant and a visitor id: nothing to report")
    names = sorted(data)
    control = control or names[0]
    if control not in data:
        raise ConfigError(f"control variant '{control}' has no events (have: {', '.join(names)})")
    reports = {}
    for name in names:
        d = data[name]
        reports[name] = VariantReport(
            variant=name,
            visitors=len(d["impressions"]),
            searches=int(d["searches"].sum()),
            impressions=int(d["impressions"].sum()),
            clicks=int(d["clicks"].sum()),
            carts=int(d["carts"].sum()),
            orders=int(d["orders"].sum()),
            ctr=ratio(d["clicks"], d["impressions"]),
            cart_rate=ratio(d["carts"], d["searches"]),
            conversion=ratio(d["orders"], d["searches"]),
        )
    comparisons = [
        _compare(getattr(reports[n], m), getattr(reports[control], m), n, control, m)
        for n in names
        if n != control
        for m in ("ctr", "conversion")
    ]
    return ABReport([reports[control], *(reports[n] for n in names if n != control)], comparisons)


__all__ = ["ABReport", "Comparison", "Ratio", "VariantReport", "ab_report", "assign_variant", "ratio"]
