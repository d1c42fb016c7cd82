"""Column mapping and row validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from catalog_fakes import SMALL_ROWS, write_csv, write_jsonl, write_parquet
from hypothesis import given
from hypothesis import strategies as st

from samestyle.catalog.loaders import open_rows
from samestyle.catalog.validate import (
    DESCRIPTION_MAX_CHARS,
    TITLE_MAX_CHARS,
    ColumnMapping,
    Validator,
    clean_line,
    parse_price,
    to_text,
)
from samestyle.errors import CatalogError, ConfigError
from samestyle.types import Product, Reject


def _validate(
    path: Path, mapping: ColumnMapping | None = None
) -> tuple[list[tuple[int, Product]], list[Reject]]:
    v = Validator(mapping)
    rows = list(v.rows(open_rows(path)))
    return rows, v.rejects


def test_parse_cli_strings() -> None:
    m = ColumnMapping.parse(
        [
            "title=productDisplayName",
            "category=masterCategory, subCategory,articleType",
            "image={id}.jpg",
            "attributes=baseColour,season",
            "price=",
            "category_sep= / ",
        ]
    )
    assert m.title == "productDisplayName"
    assert m.category == ("masterCategory", "subCategory", "articleType")
    assert m.attributes == ("baseColour", "season")
    assert (m.image, m.image_is_template, m.price, m.category_sep) == ("{id}.jpg", True, "", " / ")
    assert m.id == "id" and m.description is None  # untouched fields keep their defaults
    assert ColumnMapping.parse(["attributes=*"]).attributes is None
    assert ColumnMapping.parse(["attributes="]).attributes == ()
    assert m.to_dict()["title"] == "productDisplayName"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("title=", "'title' cannot be empty"),
        ("category_sep=", "'category_sep' cannot be empty"),
        ("title", "expected field=column"),
        ("titel=name", "did you mean 'title'"),
        ("colour=c", "known: id, title"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ColumnMapping.parse([spec])


def test_missing_column_is_a_catalog_error_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text("id,name,category\n1,Hat,A\n")
    with pytest.raises(CatalogError) as err:
        _validate(path)
    assert str(err.value) == (
        f"{path}: missing column 'title' (have: id, name, category); map it with --column title=name"
    )
    with pytest.raises(CatalogError, match=r"missing column 'colour' \(for attributes\)"):
        _validate(path, ColumnMapping(title="name", attributes=("colour",)))
    rows, _ = _validate(path, ColumnMapping.parse(["title=name"]))
    assert rows[0][1].title == "Hat"


def test_missing_key_in_every_jsonl_line_is_a_catalog_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    with pytest.raises(CatalogError, match=r"missing column 'title'.*--column title=name"):
        _validate(path)


def test_missing_and_empty_values_are_row_rejects(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": 1, "title": "a"},
            {"id": 2},
            {"id": " ", "title": "c"},
            {"id": None, "title": "d"},
            {"id": 5, "title": "\t"},
        ],
    )
    rows, rejects = _validate(path)
    assert [p.id for _, p in rows] == ["1"]
    assert [(r.file, r.row, r.field, r.fatal) for r in rejects] == [
        (str(path), 2, "title", True),
        (str(path), 3, "id", True),
        (str(path), 4, "id", True),
        (str(path), 5, "title", True),
    ]
    assert "missing or empty title" in rejects[0].reason and rejects[0].product_id == "2"


def test_duplicate_ids_reject_the_later_row_naming_the_first(tmp_path: Path) -> None:
    a = write_csv(
        tmp_path / "a.csv",
        [{"id": "7", "title": "x"}, {"id": "8", "title": "y"}, {"id": "7", "title": "z"}],
        ("id", "title"),
    )
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": 8, "title": "again"}, {"id": 9, "title": "new"}])
    v = Validator()
    products = [p for src in (a, b) for _, p in v.rows(open_rows(src))]
    assert [(p.id, p.title) for p in products] == [("7", "x"), ("8", "y"), ("9", "new")]
    assert [(r.file, r.row, r.field) for r in v.rejects] == [(str(a), 3, "id"), (str(b), 1, "id")]
    assert f"duplicate id '7' (first seen at {a} row 1)" in v.rejects[0].reason
    assert f"first seen at {a} row 2" in v.rejects[1].reason


def test_parquet_wrong_types_are_coerced(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("title", pa.string()),
            ("price", pa.string()),
            ("year", pa.float64()),
            ("tags", pa.list_(pa.string())),
            ("on_sale", pa.bool_()),
        ]
    )
    rows: list[dict[str, Any]] = [
        {"id": 10, "title": "Hat", "price": "12.50", "year": 2012.0, "tags": ["a", "b"], "on_sale": True},
        {"id": 11, "title": "Cap", "price": "cheap", "year": None, "tags": None, "on_sale": None},
        {"id": None, "title": "Orphan", "price": "1", "year": 1.5, "tags": [], "on_sale": False},
    ]
    path = write_parquet(tmp_path / "p.parquet", rows, schema)
    products, rejects = _validate(path)
    assert [(p.id, p.price) for _, p in products] == [("10", 12.5), ("11", None)]
    assert dict(products[0][1].attributes) == {"year": "2012", "tags": "a, b", "on_sale": "true"}
    assert dict(products[1][1].attributes) == {}
    assert [(r.row, r.field, r.fatal) for r in rejects] == [(2, "price", False), (3, "id", True)]
    assert "not a price: 'cheap'; kept without a price" in rejects[0].reason


def test_float_ids_lose_their_point_zero(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "p.parquet", [{"id": 15970.0, "title": "a"}, {"id": 1.5, "title": "b"}])
    assert [p.id for _, p in _validate(path)[0]] == ["15970", "1.5"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12.0),
        (12.5, 12.5),
        ("12.5", 12.5),
        ("₹1,299.00", 1299.0),
        ("$ 12.50", 12.5),
        ("12,50 EUR", 12.5),
        ("1.299,00", 1299.0),
        ("1,299", 1299.0),
        ("1.299.000", 1299000.0),
        ("1,299,000.50", 1299000.5),
        ("1.5", 1.5),
        ("Rs. 499", 499.0),
        ("1 299,5", 1299.5),
        ("", None),
        (None, None),
        (float("nan"), None),
        ("  7  ", 7.0),
        ("0", 0.0),
    ],
)
def test_parse_price(value: Any, expected: float | None) -> None:
    assert parse_price(value) == expected


@pytest.mark.parametrize("value", ["abc", "-5", -1, float("inf"), "12-15", True, "1e400", "$"])
def test_bad_prices(value: Any) -> None:
    with pytest.raises(ValueError, match="price"):
        parse_price(value)


def test_text_limits_and_control_characters(tmp_path: Path) -> None:
    long_title = "Very long title " * 200
    rows = [
        {"id": "a\x00b", "title": "  Bell\x07 \tboots\r\nblack ", "description": "x\x1b[0m\r\nline 2\u200b"},
        {"id": "2", "title": long_title, "description": "d" * (DESCRIPTION_MAX_CHARS + 5)},
    ]
    products, rejects = _validate(write_jsonl(tmp_path / "p.jsonl", rows))
    first, second = products[0][1], products[1][1]
    assert (first.id, first.title, first.description) == ("ab", "Bell boots black", "x[0m\nline 2")
    assert len(second.title) <= TITLE_MAX_CHARS and long_title.startswith(second.title)
    assert len(second.description) == DESCRIPTION_MAX_CHARS
    assert [(r.row, r.field, r.fatal) for r in rejects] == [(2, "title", False), (2, "description", False)]
    assert f"cut to the first {TITLE_MAX_CHARS}" in rejects[0].reason


def test_category_from_one_column_several_columns_or_a_list(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "p.csv", SMALL_ROWS)
    products = [p for _, p in _validate(csv_path)[0]]
    assert products[0].category == ("Apparel", "Topwear", "Jackets")
    path = write_csv(
        tmp_path / "m.csv",
        [{"id": 1, "title": "t", "m": "Apparel", "s": "", "a": "Shirts"}],
        ("id", "title", "m", "s", "a"),
    )
    mapping = ColumnMapping.parse(["category=m,s,a"])
    assert _validate(path, mapping)[0][0][1].category == ("Apparel", "Shirts")
    jl = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, "title": "t", "category": ["A", " B "]}])
    assert _validate(jl)[0][0][1].category == ("A", "B")
    slash = write_csv(
        tmp_path / "s.csv", [{"id": 1, "title": "t", "category": "A/B"}], ("id", "title", "category")
    )
    assert _validate(slash, ColumnMapping(category_sep=" / "))[0][0][1].category == ("A", "B")


def test_attributes_remaining_explicit_off_and_nested(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", SMALL_ROWS)
    first = _validate(path)[0][0][1]
    assert dict(first.attributes) == {"colour": "Blue", "year": "2012"}
    assert dict(_validate(path, ColumnMapping(attributes=("year",)))[0][0][1].attributes) == {"year": "2012"}
    assert dict(_validate(path, ColumnMapping(attributes=()))[0][0][1].attributes) == {}
    jl = write_jsonl(
        tmp_path / "n.jsonl",
        [{"id": 1, "title": "t", "attributes": {"colour": "Red", "size": 42}, "dims": {"w": 3}}],
    )
    assert dict(_validate(jl)[0][0][1].attributes) == {"colour": "Red", "size": "42", "dims.w": "3"}


def test_image_column_template_and_empty_value(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [{"id": 5, "title": "t", "image": ""}, {"id": 6, "title": "u", "image": " a/6.jpg "}],
        ("id", "title", "image"),
    )
    products, rejects = _validate(path)
    assert [p.image for _, p in products] == [None, "a/6.jpg"]
    assert [(r.row, r.field, r.fatal) for r in rejects] == [(1, "image", False)]
    templated = _validate(path, ColumnMapping(image="photos/{id}.jpg"))[0]
    assert [p.image for _, p in templated] == ["photos/5.jpg", "photos/6.jpg"]
    with pytest.raises(CatalogError, match=r"missing column 'sku' \(for image\)"):
        _validate(path, ColumnMapping(image="{sku}.jpg"))


def test_accept_cleans_in_memory_products() -> None:
    v = Validator()
    product = v.accept(Product(id=" 9 ", title="Hat\n", price=-3.0), "mem", 1)
    assert product is not None and (product.id, product.title, product.price) == ("9", "Hat", None)
    assert v.accept(Product(id="9", title="again"), "mem", 2) is None
    assert [(r.field, r.fatal) for r in v.rejects] == [("price", False), ("id", True)]


def test_to_text() -> None:
    assert [to_text(v) for v in (None, "a", 3, 3.0, 2.5, True, float("nan"), b"x", [1, "b"])] == [
        None,
        "a",
        "3",
        "3",
        "2.5",
        "true",
        None,
        "x",
        "1, b",
    ]


@given(st.text())
def test_clean_line_leaves_no_control_characters(text: str) -> None:
    cleaned = clean_line(text)
    assert cleaned == cleaned.strip()
    assert not any(c in cleaned for c in "\n\r\t\x00\x07\x1b\x7f\x85")
