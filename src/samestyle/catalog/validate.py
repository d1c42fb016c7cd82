"""Column mapping and validation: raw rows in, clean :class:`~samestyle.types.Product` objects out.

Rules (each broken rule is a :class:`~samestyle.types.Reject` naming file, row and field):

* ``id`` and ``title`` are required: a missing or empty value drops the row. A missing *column* (the whole
  file) is a :class:`~samestyle.errors.CatalogError` with a ``--column`` hint instead.
* ids are strings: ``123`` and ``123.0`` (a Parquet int or float column) both become ``"123"``; ids over
  :data:`ID_MAX_CHARS` drop the row; a repeated id drops the later row and names the first.
* ``price`` that cannot be read (``"abc"``, negative, infinite) keeps the row with ``price=None`` and a
  non-fatal reject: a price is never worth losing a product over. ``"₹1,299.00"``, ``"12,50 EUR"`` parse.
* titles over :data:`TITLE_MAX_CHARS` and descriptions over :data:`DESCRIPTION_MAX_CHARS` are cut there,
  other text at :data:`FIELD_MAX_CHARS`, each with a non-fatal reject.
* control characters are removed silently and whitespace runs (tabs, line breaks) become one space; the
  description keeps its line breaks; text other than ids is NFC-normalised.
* an empty image value keeps the row, without an image, with a non-fatal reject.
"""

from __future__ import annotations

import difflib
import math
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from samestyle.catalog.loaders import RowSource
from samestyle.errors import CatalogError, ConfigError
from samestyle.types import Product, Reject

ID_MAX_CHARS = 256
TITLE_MAX_CHARS = 1_000
DESCRIPTION_MAX_CHARS = 10_000
FIELD_MAX_CHARS = 1_000
_ALIASES = {
    "id": ("product_id", "sku", "style_id", "item_id", "asin", "uid"),
    "title": ("name", "product_name", "productDisplayName", "product_title", "title_en"),
}
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
_PRICE = re.compile(
    r"^(?:[A-Za-z]{1,3}\.?|[^\w\s.,+-])?\s*([+-]?\d[\d.,' ]*)\s*(?:[A-Za-z]{1,3}|[^\w\s.,+-])?$"
)


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


def to_text(value: Any) -> str | None:
    """Any loaded value as text: ints and integral floats without ``.0``, NaN as None, lists joined."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {to_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(t for t in (to_text(v) for v in value) if t)
    return str(value)


def _one_line(text: str) -> str:
    return _CONTROLS.sub("", " ".join(text.split())).strip()


def clean_line(text: str | None) -> str:
    """One-line text: whitespace runs (line breaks, tabs) to one space, control characters out, NFC."""
    return unicodedata.normalize("NFC", _one_line(text)) if text else ""


def _clean_block(text: str | None) -> str:
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return unicodedata.normalize("NFC", _CONTROLS.sub("", text)).strip()


def parse_price(value: Any) -> float | None:
    """A price from a number or text such as ``"₹1,299.00"``; None when empty or NaN.

    Raises:
        ValueError: the value is not a price (text, negative, infinite); the message says which.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a price: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        match = _PRICE.match(text)
        if match is None:
            raise ValueError(f"not a price: {text[:40]!r}")
        number = _parse_number(match.group(1).replace(" ", "").replace("'", ""), text)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"not a valid price: {number}")
    return number


def _parse_number(digits: str, text: str) -> float:
    """``1,299.00`` / ``1.299,00`` / ``12,50`` / ``1,299`` / ``1.299.000``: with both separators the last is
    the decimal point; one kind repeated, or one comma before exactly three digits, groups thousands."""
    seps = [c for c in digits if c in ",."]
    last = max(digits.rfind(","), digits.rfind("."))
    thousands = len(set(seps)) == 1 and (len(seps) > 1 or (seps[0] == "," and len(digits) - last == 4))
    whole, frac = (digits, "") if not seps or thousands else (digits[:last], digits[last + 1 :])
    whole = whole.replace(",", "").replace(".", "")
    try:
        return float(f"{whole}.{frac}" if frac else whole)
    except ValueError:
        raise ValueError(f"not a price: {text[:40]!r}") from None


def _category(raw: Mapping[str, Any], m: ColumnMapping) -> list[str]:
    columns = m.category or ()
    if len(columns) != 1:
        return [to_text(raw.get(c)) or "" for c in columns]
    value = raw.get(columns[0])
    if isinstance(value, list | tuple):
        return [to_text(v) or "" for v in value]
    return (to_text(value) or "").split(m.category_sep.strip() or m.category_sep)


def _attributes(raw: Mapping[str, Any], m: ColumnMapping, used: frozenset[str]) -> dict[str, str]:
    columns = m.attributes if m.attributes is not None else [k for k in raw if k not in used]
    out: dict[str, str] = {}
    for col in columns:
        value = raw.get(col)
        if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            value = dict(value)  # a Parquet map column
        if isinstance(value, Mapping):
            prefix = "" if col == "attributes" else f"{col}."
            out.update({f"{prefix}{k}": to_text(v) or "" for k, v in value.items()})
        else:
            out[col] = to_text(value) or ""
    return out


def _image(raw: Mapping[str, Any], m: ColumnMapping) -> str | None:
    if not m.image:
        return None
    if m.image_is_template:
        try:
            return m.image.format_map({k: to_text(v) or "" for k, v in raw.items()})
        except (KeyError, ValueError, IndexError):
            return None
    return to_text(raw.get(m.image))


def _problem(pid: str, title: str, first_seen: Mapping[str, str]) -> tuple[str, str] | None:
    """Why a row must be dropped (field, reason), or None."""
    if not pid:
        return "id", "missing or empty id; the row is dropped"
    if len(pid) > ID_MAX_CHARS:
        return "id", f"id longer than {ID_MAX_CHARS} characters; the row is dropped"
    if not title:
        return "title", "missing or empty title; the row is dropped"
    if pid in first_seen:
        return "id", f"duplicate id '{pid}' (first seen at {first_seen[pid]}); the row is dropped"
    return None


class Validator:
    """Turns raw rows (from any number of files) into clean Products; ids are unique across all files.

    Example:
        >>> v = Validator(ColumnMapping(title="name"))  # doctest: +SKIP
        >>> products = [p for _, p in v.rows(open_rows("products.csv"))]  # doctest: +SKIP
        >>> v.rejects  # every problem found so far  # doctest: +SKIP
    """

    def __init__(self, mapping: ColumnMapping | None = None) -> None:
        self.mapping = mapping or ColumnMapping()
        self.rejects: list[Reject] = []
        self._first_seen: dict[str, str] = {}

    def rows(self, source: RowSource) -> Iterator[tuple[int, Product]]:
        """Validate every row of ``source``; yields ``(row, product)`` for the accepted ones.

        Raises:
            CatalogError: a required or explicitly mapped column is missing from the file (for JSONL,
                raised at the end when no line had the key).
        """
        with source:  # closed however this ends: done, an error, or the caller stopping early
            if source.columns:
                check_columns(self.mapping, source.columns, source.name)
            m = self.mapping.resolve(source.columns)
            used, keys = m.used(), set[str]()
            for row, raw in source:
                if source.columns is None:
                    keys.update(raw)
                product, notes = self._from_raw(raw, m, used)
                accepted = self.accept(product, source.name, row)
                if accepted is not None:
                    for name, reason in notes:  # kept-but-flagged problems, only for rows that stay
                        self._reject(source.name, row, name, reason, accepted.id, fatal=False)
                    yield row, accepted
            self.rejects.extend(source.rejects)
        if source.columns is None and keys:
            check_columns(self.mapping, keys, source.name)

    def _from_raw(
        self, raw: Mapping[str, Any], m: ColumnMapping, used: frozenset[str]
    ) -> tuple[Product, list[tuple[str, str]]]:
        """The row as an uncleaned Product, and (field, reason) notes for non-fatal problems."""
        notes: list[tuple[str, str]] = []
        try:
            price = parse_price(raw.get(m.price)) if m.price else None
        except ValueError as exc:
            price = None
            notes.append(("price", f"{exc}; kept without a price"))
        image = _image(raw, m)
        if m.image and not clean_line(image) and (self.mapping.image or m.image in raw):
            notes.append(("image", "empty value; kept without an image"))
        product = Product(
            id=to_text(raw.get(m.id)) or "",
            title=to_text(raw.get(m.title)) or "",
            description=(to_text(raw.get(m.description)) or "") if m.description else "",
            category=tuple(_category(raw, m)),
            attributes=_attributes(raw, m, used),
            image=image,
            supplier_id=to_text(raw.get(m.supplier_id)) if m.supplier_id else None,
            price=price,
        )
        return product, notes

    def accept(self, product: Product, file: str, row: int | None) -> Product | None:
        """Clean ``product`` and check its id, title and price; None (and a fatal reject) if dropped."""
        pid = _one_line(product.id)
        title = clean_line(product.title)
        problem = _problem(pid, title, self._first_seen)
        if problem is not None:
            self._reject(file, row, problem[0], problem[1], pid[:ID_MAX_CHARS] or None)
            return None
        self._first_seen[pid] = f"{file} row {row}" if row is not None else file
        cut = _Cutter(self, file, row, pid)
        attributes = ((clean_line(k), clean_line(v)) for k, v in product.attributes.items())
        return replace(
            product,
            id=pid,
            title=cut(title, "title", TITLE_MAX_CHARS),
            description=cut(_clean_block(product.description), "description", DESCRIPTION_MAX_CHARS),
            category=tuple(p for p in (cut(clean_line(c), "category") for c in product.category) if p),
            attributes={k: cut(v, f"attributes.{k}") for k, v in attributes if k and v},
            image=clean_line(product.image) or None,
            supplier_id=cut(clean_line(product.supplier_id), "supplier_id") or None,
            price=self._price(product.price, file, row, pid),
        )

    def _price(self, price: float | None, file: str, row: int | None, pid: str) -> float | None:
        try:
            return parse_price(price)
        except ValueError as exc:
            self._reject(file, row, "price", f"{exc}; kept without a price", pid, fatal=False)
            return None

    def _reject(
        self, file: str, row: int | None, field: str, reason: str, pid: str | None, fatal: bool = True
    ) -> None:
        self.rejects.append(Reject(file, row, field, reason, pid, fatal))


class _Cutter:
    """Truncates over-long text to a limit, recording a non-fatal reject for each cut."""

    def __init__(self, validator: Validator, file: str, row: int | None, pid: str) -> None:
        self._v, self._file, self._row, self._pid = validator, file, row, pid

    def __call__(self, text: str, field: str, limit: int = FIELD_MAX_CHARS) -> str:
        if len(text) <= limit:
            return text
        reason = f"{len(text)} characters, cut to the first {limit}"
        self._v._reject(self._file, self._row, field, reason, self._pid, fatal=False)
        return text[:limit].rstrip()


__all__ = [
    "DESCRIPTION_MAX_CHARS",
    "FIELD_MAX_CHARS",
    "ID_MAX_CHARS",
    "TITLE_MAX_CHARS",
    "ColumnMapping",
    "Validator",
    "check_columns",
    "clean_line",
    "parse_price",
    "to_text",
]
