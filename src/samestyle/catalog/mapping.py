"""Column mapping: which source column feeds which :class:`~samestyle.types.Product` field.

:class:`ColumnMapping` is built from CLI ``--column field=column`` strings and settled per file
(:meth:`ColumnMapping.resolve`); :func:`check_columns` names a missing column with a ``--column`` hint.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from samestyle.errors import CatalogError, ConfigError

_ALIASES = {
    "id": ("product_id", "sku", "style_id", "item_id", "asin", "uid"),
    "title": ("name", "product_name", "productDisplayName", "product_title", "title_en"),
}


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds which :class:`Product` field.

    ``None`` means automatic: the column named like the field (``description``, ``category``, ``image``,
    ``supplier_id``, ``price``) if the file has one, and for ``attributes`` every column not used
    elsewhere. An explicit name must exist in the file. ``""`` (or ``()`` for the tuple fields) turns a
    field off. ``image`` may be a template over columns, e.g. ``"{id}.jpg"``.

    Example:
        >>> ColumnMapping.parse(["title=productDisplayName", "category=masterCategory,subCategory"]).title
        'productDisplayName'
    """

    id: str = "id"
    title: str = "title"
    description: str | None = None
    category: tuple[str, ...] | None = None
    category_sep: str = " > "
    attributes: tuple[str, ...] | None = None
    image: str | None = None
    supplier_id: str | None = None
    price: str | None = None

    @classmethod
    def parse(cls, specs: Iterable[str], base: ColumnMapping | None = None) -> ColumnMapping:
        """Build a mapping from ``field=column`` strings (CLI ``--column``); lists are comma-separated.

        Raises:
            ConfigError: a spec has no ``=``, names an unknown field or empties id, title or category_sep.
        """
        names = [f.name for f in fields(cls)]
        changes: dict[str, Any] = {}
        for spec in specs:
            key, sep, value = spec.partition("=")
            key = key.strip()
            if not sep:
                raise ConfigError(f"--column '{spec}': expected field=column, e.g. title=productDisplayName")
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ConfigError(
                    f"--column '{spec}': unknown field '{key}'; {hint}known: {', '.join(names)}"
                )
            if key in ("category", "attributes"):
                columns = (c.strip() for c in value.split(","))
                changes[key] = None if value.strip() == "*" else tuple(c for c in columns if c)
            else:
                changes[key] = value if key == "category_sep" else value.strip()
        return replace(base or cls(), **changes)

    def __post_init__(self) -> None:
        for name in ("id", "title", "category_sep"):
            if not getattr(self, name):
                raise ConfigError(f"column mapping: '{name}' cannot be empty (e.g. --column {name}=...)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def image_is_template(self) -> bool:
        return bool(self.image) and "{" in (self.image or "")

    def resolve(self, columns: Sequence[str] | None) -> ColumnMapping:
        """This mapping with automatic fields settled for a file with ``columns`` (``""``/``()`` = off).

        ``columns`` None (JSONL, keys vary by row) keeps every automatic field on.
        """

        def auto(value: str | None, name: str) -> str:
            return value if value is not None else name if columns is None or name in columns else ""

        category = self.category if self.category is not None else (auto(None, "category"),)
        return replace(
            self,
            description=auto(self.description, "description"),
            category=tuple(c for c in category if c),
            image=auto(self.image, "image"),
            supplier_id=auto(self.supplier_id, "supplier_id"),
            price=auto(self.price, "price"),
        )

    def required(self) -> list[tuple[str, str]]:
        """``(field, column)`` pairs that must exist: id, title and every explicitly named column."""
        pairs = [("id", self.id), ("title", self.title)]
        pairs += [(n, getattr(self, n)) for n in ("description", "supplier_id", "price") if getattr(self, n)]
        pairs += [("category", c) for c in self.category or ()]
        pairs += [("attributes", c) for c in self.attributes or ()]
        if self.image_is_template:
            pairs += [("image", f) for _, f, _, _ in string.Formatter().parse(self.image or "") if f]
        elif self.image:
            pairs.append(("image", self.image))
        return pairs

    def used(self) -> frozenset[str]:
        """Columns feeding a field other than ``attributes`` (call on a resolved mapping)."""
        image = "" if self.image_is_template else self.image
        named = (
            self.id,
            self.title,
            self.description,
            self.supplier_id,
            self.price,
            image,
            *(self.category or ()),
        )
        return frozenset(c for c in named if c)


def check_columns(mapping: ColumnMapping, columns: Iterable[str], file: str) -> None:
    """Raise CatalogError for the first required column the file lacks, with a ``--column`` hint."""
    have = list(columns)
    for name, column in mapping.required():
        if column in have:
            continue
        close = difflib.get_close_matches(column, have, n=1, cutoff=0.6)
        alias = next((a for a in _ALIASES.get(name, ()) if a in have), None)
        guess = close[0] if close else alias or "<column>"
        shown = ", ".join(have[:20]) + (", ..." if len(have) > 20 else "")
        what = f"column '{column}'" if column == name else f"column '{column}' (for {name})"
        raise CatalogError(f"{file}: missing {what} (have: {shown}); map it with --column {name}={guess}")


__all__ = ["ColumnMapping", "check_columns"]
