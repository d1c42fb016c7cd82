"""Loaders: every format to raw rows; rows that cannot be parsed become rejects, the rest survive."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from catalog_fakes import SMALL_ROWS, write_csv, write_parquet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samestyle.catalog.loaders import Format, RowSource, detect_format, open_rows
from samestyle.errors import CatalogError
from samestyle.types import Reject


def _read(path: Path, **kw: Any) -> tuple[list[tuple[int, dict[str, Any]]], list[Reject], RowSource]:
    source = open_rows(path, **kw)
    rows = list(source)
    return rows, source.rejects, source


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", Format.CSV),
        ("a.TSV", Format.TSV),
        ("a.jsonl", Format.JSONL),
        ("a.ndjson", Format.JSONL),
        ("a.parquet", Format.PARQUET),
        ("a.csv.gz", Format.CSV),
        ("dir.v2/a.jsonl.gz", Format.JSONL),
    ],
)
def test_format_from_extension(name: str, fmt: Format) -> None:
    assert detect_format(name) is fmt


def test_format_override_and_unknown() -> None:
    assert detect_format("dump.txt", "tsv") is Format.TSV
    with pytest.raises(CatalogError, match=r"dump\.txt: cannot tell the format"):
        detect_format("dump.txt")
    with pytest.raises(CatalogError, match="unknown catalogue format 'xml'"):
        detect_format("a.csv", "xml")


def test_csv_rows_are_numbered_from_one(tmp_path: Path) -> None:
    rows, rejects, source = _read(write_csv(tmp_path / "p.csv", SMALL_ROWS))
    assert [n for n, _ in rows] == [1, 2, 3, 4] and not rejects
    assert source.columns == ("id", "title", "description", "category", "colour", "year", "price", "image")
    assert rows[1][1]["title"] == 'Red "summer" dress, midi'
    assert rows[1][1]["description"] == "Line one\nline two"  # a quoted field spanning two lines


def test_tsv_and_guessed_semicolon(tmp_path: Path) -> None:
    rows, _, _ = _read(write_csv(tmp_path / "p.tsv", SMALL_ROWS, delimiter="\t"))
    assert rows[0][1]["title"] == "Blue denim jacket"
    (tmp_path / "semi.csv").write_text("id;title\n1;Hat\n")
    assert _read(tmp_path / "semi.csv")[0] == [(1, {"id": "1", "title": "Hat"})]


def test_broken_quoting_loses_only_the_broken_row(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        'id,title,price\n1,Blue,10\n2,"Red dress,20\n3,Green,30\n4,"Grey, wool",40\n5,a,b,c\n6,Pink,5\n'
    )
    rows, rejects, _ = _read(path)
    assert [r["id"] for _, r in rows] == ["1", "3", "4", "6"]
    assert rows[2][1]["title"] == "Grey, wool"
    assert [(r.file, r.row, r.field) for r in rejects] == [(str(path), 2, "title"), (str(path), 5, None)]
    assert all(r.fatal for r in rejects)
    assert "line 3" in rejects[0].reason and "unbalanced" in rejects[0].reason
    assert "expected 3 fields, got 4" in rejects[1].reason


def test_unclosed_quote_on_last_line(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text('id,title\n1,Blue\n2,"Red\n')
    rows, rejects, _ = _read(path)
    assert [r["id"] for _, r in rows] == ["1"]
    assert [(r.row, r.fatal) for r in rejects] == [(2, True)]


def test_non_utf8_rows_are_rejected_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    lines = ["id,title,colour", "1,Café,Blue", "2,Caf\xe9 latin-1,Red", "3,Plain,Gr\xfcn", "4,Naïve,Pink"]
    data = b"".join(
        (line.encode("latin-1") if i in (2, 3) else line.encode("utf-8")) + b"\r\n"
        for i, line in enumerate(lines)
    )
    path.write_bytes(data)
    rows, rejects, _ = _read(path)
    assert [r["title"] for _, r in rows] == ["Café", "Naïve"]
    assert [(r.row, r.field) for r in rejects] == [(2, "title"), (3, "colour")]
    assert "not valid utf-8 (byte 0xE9 on line 3)" in rejects[0].reason
    assert rows[0][1]["colour"] == "Blue"  # CRLF stripped


def test_other_encoding_can_be_named(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,title\n1,Café\n".encode("cp1252"))
    assert _read(path, encoding="cp1252")[0] == [(1, {"id": "1", "title": "Café"})]


@pytest.mark.parametrize("bom", ["utf-8-sig", "utf-16"])
def test_byte_order_marks(tmp_path: Path, bom: str) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("id,title\r\n1,Café\r\n".encode(bom))
    rows, rejects, source = _read(path)
    assert source.columns == ("id", "title") and rows == [(1, {"id": "1", "title": "Café"})] and not rejects


def test_bad_header_bytes_are_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"id,t\xeftle\n1,a\n")
    with pytest.raises(CatalogError, match=r"p\.csv line 1: header is not valid utf-8"):
        open_rows(path)


def test_jsonl_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        b'{"id": 1, "title": "a"}\nnot json\n[1, 2]\n\n{"id": 2, "title": "caf\xe9"}\n'
        b'{"id": 3, "title": "c", "tags": ["x"]}\n'
    )
    rows, rejects, source = _read(path)
    assert source.columns is None
    assert [n for n, _ in rows] == [1, 6] and rows[1][1]["tags"] == ["x"]
    assert [(r.row, r.fatal) for r in rejects] == [(2, True), (3, True), (5, True)]
    assert "not valid JSON" in rejects[0].reason and "not a JSON object (got list)" in rejects[1].reason
    assert "not valid utf-8" in rejects[2].reason
    assert source.rows_seen == 5


def test_parquet_rows_keep_types(tmp_path: Path) -> None:
    rows, rejects, source = _read(write_parquet(tmp_path / "p.parquet", SMALL_ROWS))
    assert rows[0] == (1, SMALL_ROWS[0]) and len(rows) == 4 and not rejects
    assert source.columns is not None and "price" in source.columns


def test_gzip_csv(tmp_path: Path) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows([["id", "title"], ["1", "Hat"]])
    path = tmp_path / "p.csv.gz"
    path.write_bytes(gzip.compress(buf.getvalue().encode()))
    assert _read(path)[0] == [(1, {"id": "1", "title": "Hat"})]
    (tmp_path / "fake.csv.gz").write_text("id,title\n")
    with pytest.raises(CatalogError, match=r"fake\.csv\.gz: cannot open"):
        open_rows(tmp_path / "fake.csv.gz")


@pytest.mark.parametrize("name", ["e.csv", "e.tsv", "e.jsonl", "e.parquet", "header_only.csv", "blank.csv"])
def test_empty_files_give_a_warning_not_a_crash(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".parquet"):
        write_parquet(path, [], schema=pa.schema([("id", pa.string()), ("title", pa.string())]))
    else:
        path.write_text({"header_only.csv": "id,title\n", "blank.csv": "\n"}.get(name, ""))
    rows, rejects, _ = _read(path)
    assert rows == []
    assert len(rejects) == 1 and rejects[0].row is None and not rejects[0].fatal
    assert rejects[0].file == str(path) and (
        "empty" in rejects[0].reason or "no data rows" in rejects[0].reason
    )


@pytest.mark.parametrize("name", ["nope.csv", "nope.jsonl", "nope.parquet", "nope.csv.gz"])
def test_missing_file_is_a_catalog_error_naming_it(tmp_path: Path, name: str) -> None:
    with pytest.raises(CatalogError, match=f"{name}: no such catalogue file"):
        open_rows(tmp_path / name)


def test_unknown_encoding_and_early_close(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", SMALL_ROWS)
    with pytest.raises(CatalogError, match="unknown text encoding 'klingon'"):
        open_rows(path, encoding="klingon")
    with open_rows(path) as source:
        assert next(iter(source))[0] == 1
    assert source._handle.closed


def test_folder_and_fake_parquet(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(CatalogError, match=r"d\.csv: is a folder"):
        open_rows(tmp_path / "d.csv")
    (tmp_path / "x.parquet").write_text("id,title\n")
    with pytest.raises(CatalogError, match=r"x\.parquet: cannot read as Parquet"):
        open_rows(tmp_path / "x.parquet")


def test_duplicate_header_columns_are_noted(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,title,title\n1,a,b\n")
    rows, rejects, _ = _read(path)
    assert rows == [(1, {"id": "1", "title": "b"})]
    assert rejects[0].row is None and not rejects[0].fatal and "duplicate header" in rejects[0].reason


_cell = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_cell, _cell), min_size=1, max_size=6))
def test_csv_written_by_the_csv_module_reads_back_exactly(
    tmp_path: Path, cells: list[tuple[str, str]]
) -> None:
    path = tmp_path / "h.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["a", "b"])
        writer.writerows(cells)
    rows, rejects, _ = _read(path)
    assert not [r for r in rejects if r.fatal]
    assert [(r["a"], r["b"]) for _, r in rows] == cells
