"""``Filter``: what a search may return, by category, attributes, supplier, id and price.

Parsed from CLI/HTTP strings with :meth:`Filter.parse`; turned into an ``AllowList`` by
``MetadataStore.select``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from samestyle.errors import ConfigError

_SPEC_KEYS = ("category", "attr", "supplier", "exclude-supplier", "exclude-id", "price")
_SET_FIELDS = {"supplier": "suppliers", "exclude-supplier": "exclude_suppliers", "exclude-id": "exclude_ids"}


@dataclass(frozen=True)
class Filter:
    """All conditions must hold; an empty (default) filter keeps everything.

    Attributes:
        category: a category path prefix; ``("Apparel", "Topwear")`` keeps ``Apparel/Topwear/Tshirts``
            too. Compared level by level, case-insensitively.
        attributes: every ``name: value`` must be among the product's attributes (case-insensitive).
        suppliers: when set, only these supplier ids (a product without a supplier fails).
        exclude_suppliers: supplier ids to drop.
        exclude_ids: product ids to drop (e.g. the query product itself).
        price_min, price_max: inclusive bounds; a product without a price fails any bound.

    Example:
        >>> Filter.parse(["category=Apparel/Topwear", "attr=baseColour:Red", "price=10..50"]).price_max
        50.0
    """

    category: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    suppliers: frozenset[str] | None = None
    exclude_suppliers: frozenset[str] = frozenset()
    exclude_ids: frozenset[str] = frozenset()
    price_min: float | None = None
    price_max: float | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "category", tuple(self.category))
        set_(self, "attributes", MappingProxyType(dict(self.attributes)))
        if self.suppliers is not None:
            set_(self, "suppliers", frozenset(self.suppliers))
        set_(self, "exclude_suppliers", frozenset(self.exclude_suppliers))
        set_(self, "exclude_ids", frozenset(self.exclude_ids))
        for name in ("price_min", "price_max"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or math.isnan(value)):
                raise ConfigError(f"filter {name} must be a number, got {value!r}")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ConfigError(f"filter price range is empty: {self.price_min} > {self.price_max}")

    @property
    def is_empty(self) -> bool:
        """True when the filter keeps every product."""
        return not (
            self.category
            or self.attributes
            or self.suppliers is not None
            or self.exclude_suppliers
            or self.exclude_ids
            or self.price_min is not None
            or self.price_max is not None
        )

    @classmethod
    def parse(cls, specs: str | Iterable[str]) -> Filter:
        """Build a filter from ``key=value`` strings (repeatable keys combine).

        Keys: ``category=Apparel/Topwear``, ``attr=baseColour:Red``, ``supplier=S1,S2``,
        ``exclude-supplier=S3``, ``exclude-id=P1,P2``, ``price=10..50`` (or ``10..``, ``..50``, ``25``).
        """
        items = [specs] if isinstance(specs, str) else list(specs)
        kw: dict[str, object] = {}
        attrs: dict[str, str] = {}
        sets: dict[str, set[str]] = {"suppliers": set(), "exclude_suppliers": set(), "exclude_ids": set()}
        for spec in items:
            key, sep, value = spec.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or key not in _SPEC_KEYS:
                close = difflib.get_close_matches(key, _SPEC_KEYS, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                known = ", ".join(_SPEC_KEYS)
                raise ConfigError(f"bad filter '{spec}': expected KEY=VALUE, KEY one of {known}.{hint}")
            if key == "category":
                kw["category"] = tuple(p.strip() for p in value.split("/") if p.strip())
            elif key == "attr":
                name, colon, wanted = value.partition(":")
                if not colon or not name.strip():
                    raise ConfigError(f"bad filter '{spec}': write attr=NAME:VALUE, e.g. attr=baseColour:Red")
                attrs[name.strip()] = wanted.strip()
            elif key == "price":
                kw["price_min"], kw["price_max"] = _parse_range(spec, value)
            else:
                target = _SET_FIELDS[key]
                sets[target].update(v.strip() for v in value.split(",") if v.strip())
        if any(s.partition("=")[0].strip().lower() == "supplier" for s in items):
            kw["suppliers"] = frozenset(sets["suppliers"])
        return cls(
            attributes=attrs,
            exclude_suppliers=frozenset(sets["exclude_suppliers"]),
            exclude_ids=frozenset(sets["exclude_ids"]),
            **kw,  # type: ignore[arg-type]
        )


def _parse_range(spec: str, value: str) -> tuple[float | None, float | None]:
    lo, dots, hi = value.partition("..")
    try:
        if not dots:
            exact = float(value)
            return exact, exact
        return (float(lo) if lo.strip() else None), (float(hi) if hi.strip() else None)
    except ValueError:
        raise ConfigError(f"bad filter '{spec}': write price=MIN..MAX, MIN.., ..MAX or PRICE") from None


__all__ = ["Filter"]
