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

The mapping itself is :mod:`samestyle.catalog.mapping` and the value cleaning
:mod:`samestyle.catalog.values`; their public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from samestyle.catalog.loaders import RowSource
from samestyle.catalog.mapping import ColumnMapping, check_columns
from samestyle.catalog.values import clean_block, clean_line, one_line, parse_price, to_text
from samestyle.types import Product, Reject

ID_MAX_CHARS = 256
TITLE_MAX_CHARS = 1_000
DESCRIPTION_MAX_CHARS = 10_000
FIELD_MAX_CHARS = 1_000


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
        pid = one_line(product.id)
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
            description=cut(clean_block(product.description), "description", DESCRIPTION_MAX_CHARS),
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
