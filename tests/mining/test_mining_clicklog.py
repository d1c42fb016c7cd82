"""Click-log reading and writing: bad rows are reported with file, line and field; good rows are kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mining_fakes import hand_log

from samestyle.mining import ClickLogError, EventType, normalize_query, read_click_log, write_click_log
from samestyle.mining.clicklog import parse_timestamp

GOOD = {"session_id": "s1", "query": "red dress", "product_id": "p1", "event": "click", "position": 3,
        "timestamp": "2024-05-01T10:00:00Z"}  # fmt: skip


def _line(**changes: object) -> str:
    rec = {**GOOD, **changes}
    return json.dumps({k: v for k, v in rec.items() if v is not _DROP})


_DROP = object()


def test_bad_lines_are_reported_with_file_line_and_field(tmp_path: Path) -> None:
    lines = [
        _line(),  # 1 good
        "{not json",  # 2
        "[1, 2]",  # 3 not an object
        _line(session_id=_DROP),  # 4
        _line(event="view"),  # 5
        _line(position=0),  # 6
        _line(position="3"),  # 7
        _line(position=_DROP),  # 8 required for a click
        _line(timestamp="yesterday"),  # 9
        _line(timestamp=_DROP),  # 10
        _line(product_id=True),  # 11
        "",  # 12 blank: skipped silently
        _line(event="CART", position=_DROP, timestamp=1714557600),  # 13 good: cart needs no position
        _line(query="", event="impression", timestamp=1714557600.5),  # 14 good: browse
        _line(query=None, extra="ignored", visitor_id="v9", variant="B"),  # 15 good: null query = browse
        _line(query=_DROP),  # 16
        _line(position=2.5),  # 17
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events, rejects = read_click_log(path)
    assert [(r.row, r.field) for r in rejects] == [
        (2, None), (3, None), (4, "session_id"), (5, "event"), (6, "position"), (7, "position"),
        (8, "position"), (9, "timestamp"), (10, "timestamp"), (11, "product_id"), (16, "query"),
        (17, "position"),
    ]  # fmt: skip
    assert all(r.file == str(path) and r.fatal for r in rejects)
    assert "view" in rejects[3].reason and "impression" in rejects[3].reason  # lists the known events
    assert f"{path} row 5 field 'event'" in str(rejects[3])
    assert rejects[2].product_id == "p1"
    assert [e.event for e in events] == [
        EventType.CLICK,
        EventType.CART,
        EventType.IMPRESSION,
        EventType.CLICK,
    ]
    first, cart, browse, last = events
    assert first.timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp() and first.position == 3
    assert cart.position is None and cart.timestamp == 1714557600.0
    assert browse.query == "" and last.query == ""
    assert (last.visitor_id, last.variant) == ("v9", "B")


def test_non_utf8_line_is_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line().encode() + b"\n\xff\xfe\n" + _line(product_id="p2").encode() + b"\n")
    events, rejects = read_click_log(path)
    assert [e.product_id for e in events] == ["p1", "p2"]
    assert [(r.row, r.reason[:9]) for r in rejects] == [(2, "not UTF-8")]


@pytest.mark.parametrize("name", ["log.jsonl", "log.jsonl.gz", "log.parquet"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    events = hand_log()
    path = write_click_log(events, tmp_path / name)
    back, rejects = read_click_log(path)
    assert rejects == []
    assert back == events
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_parquet_bad_rows_and_typed_timestamps(tmp_path: Path) -> None:
    table = pa.table(
        {
            "session_id": ["s1", "s2", None],
            "query": ["q", "q", "q"],
            "product_id": ["a", "b", "c"],
            "event": ["click", "purchase", "click"],
            "position": [1, 1, 1],
            "timestamp": pa.array([datetime(2024, 1, 1)] * 3, pa.timestamp("s")),
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    events, rejects = read_click_log(tmp_path / "log.parquet")
    assert [e.product_id for e in events] == ["a"]
    assert events[0].timestamp == datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert [(r.row, r.field) for r in rejects] == [(2, "event"), (3, "session_id")]


def test_unreadable_files_raise(tmp_path: Path) -> None:
    pq.write_table(pa.table({"session_id": ["s"], "query": ["q"]}), tmp_path / "cols.parquet")
    with pytest.raises(ClickLogError, match="missing column"):
        read_click_log(tmp_path / "cols.parquet")
    with pytest.raises(ClickLogError, match="no such"):
        read_click_log(tmp_path / "absent.jsonl")
    (tmp_path / "log.csv").write_text("x\n")
    with pytest.raises(ClickLogError, match="unknown click-log format"):
        read_click_log(tmp_path / "log.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ClickLogError, match="Parquet"):
        read_click_log(tmp_path / "bad.parquet")


def test_timestamps_and_query_normalisation() -> None:
    assert parse_timestamp("2024-05-01T12:00:00+02:00") == parse_timestamp("2024-05-01T10:00:00Z")
    assert parse_timestamp("2024-05-01 10:00:00") == parse_timestamp(1714557600)
    assert parse_timestamp("1714557600") == 1714557600.0
    for bad in (float("nan"), True, None, "05/01/2024", [1]):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
    assert normalize_query("  Men's  NAVY-Blue T-Shirts!") == "mens navy blue tshirts"
    assert normalize_query("Café ｃｒｅｍｅ") == "café creme"
    assert normalize_query(" ?! ") == ""
