"""The click-log format: one search event per row, JSONL (optionally gzipped) or Parquet.

Fields (see ``docs/click-logs.md``): ``session_id``, ``query`` (may be empty: a browse event),
``product_id``, ``event`` (impression | click | cart | order), ``position`` (rank shown, >= 1;
optional for cart/order), ``timestamp`` (ISO-8601 string or epoch seconds), and the optional
``visitor_id`` and ``variant`` (the A/B arm that served the result). Unknown fields are ignored.

A bad row (not JSON, a missing field, an unknown event, a bad position or timestamp) becomes a
:class:`~samestyle.types.Reject` naming the file, the line and the field; reading goes on.
The row model (:class:`ClickEvent`, :class:`EventType`) and the validation of one record live in
:mod:`samestyle.mining.events` and are re-exported here.

Example:
    >>> events, rejects = read_click_log("clicks.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from samestyle.errors import SamestyleError
from samestyle.fsio import atomic_path
from samestyle.mining.events import BadField, ClickEvent, EventType, event_from_record, parse_timestamp
from samestyle.types import Reject

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
REQUIRED_FIELDS = ("session_id", "query", "product_id", "event", "timestamp")
SCHEMA = pa.schema(
    [
        ("session_id", pa.string()),
        ("query", pa.string()),
        ("product_id", pa.string()),
        ("event", pa.string()),
        ("position", pa.int32()),
        ("timestamp", pa.float64()),
        ("visitor_id", pa.string()),
        ("variant", pa.string()),
    ]
)


class ClickLogError(SamestyleError):
    """A click-log file cannot be read at all (one bad row is a Reject, not an exception)."""


_NON_WORD = re.compile(r"[^\w]+")
# join a hyphen/apostrophe next to a one-letter part: t-shirt -> tshirt, men's -> mens (not navy-blue)
_JOINERS = re.compile(r"(?<=\b\w)['’\-](?=\w)|(?<=\w)['’\-](?=\w\b)")


def normalize_query(query: str) -> str:
    """Lower-case, NFKC, join ``t-shirt``/``men's``, other punctuation to spaces, single spaces.

    Example:
        >>> normalize_query("  Men's  NAVY-Blue T-Shirts!")
        'mens navy blue tshirts'
    """
    text = _JOINERS.sub("", unicodedata.normalize("NFKC", query).lower())
    return " ".join(t for t in _NON_WORD.sub(" ", text).replace("_", " ").split() if t)


def _is_parquet(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return True
    if name.endswith(JSONL_SUFFIXES):
        return False
    raise ClickLogError(f"{path}: unknown click-log format; name it *.jsonl (optionally .gz) or *.parquet")


def _jsonl_rows(path: Path, rejects: list[Reject]) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)``; a compressed file that breaks off part-way ends with a reject (the lines
    before it are kept), one that is not gzip at all is a :class:`ClickLogError`."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    line_no = 0
    with opener(path, "rb") as fh:
        while True:
            try:
                raw = fh.readline()
            except (EOFError, zlib.error, OSError) as exc:
                if line_no == 0:
                    raise ClickLogError(f"{path}: not a readable gzip file ({exc})") from None
                reason = f"the file is damaged after line {line_no} ({exc}); the rest of it is lost"
                rejects.append(Reject(str(path), line_no + 1, None, reason))
                return
            if not raw:
                return
            line_no += 1
            if line_no == 1 and raw.startswith(codecs.BOM_UTF8):  # Windows tools start files with one
                raw = raw[len(codecs.BOM_UTF8) :]
            yield line_no, raw


def _read_jsonl(path: Path) -> tuple[list[ClickEvent], list[Reject]]:
    events: list[ClickEvent] = []
    rejects: list[Reject] = []
    for line_no, raw in _jsonl_rows(path, rejects):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            rejects.append(Reject(str(path), line_no, None, f"not UTF-8 ({exc.reason})"))
            continue
        except json.JSONDecodeError as exc:
            rejects.append(Reject(str(path), line_no, None, f"not valid JSON ({exc.msg})"))
            continue
        if not isinstance(rec, dict):
            rejects.append(Reject(str(path), line_no, None, "not a JSON object"))
            continue
        _append(events, rejects, rec, path, line_no)
    return events, rejects


def _append(
    events: list[ClickEvent], rejects: list[Reject], rec: Mapping[str, Any], path: Path, row: int
) -> None:
    try:
        events.append(event_from_record(rec))
    except BadField as exc:
        pid = rec.get("product_id")
        rejects.append(Reject(str(path), row, exc.field, exc.reason, str(pid) if pid is not None else None))


def _read_parquet(path: Path) -> tuple[list[ClickEvent], list[Reject]]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ClickLogError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [name for name in REQUIRED_FIELDS if name not in table.column_names]
    if missing:
        raise ClickLogError(
            f"{path}: missing column(s) {', '.join(missing)} (have: {', '.join(table.column_names)})"
        )
    events: list[ClickEvent] = []
    rejects: list[Reject] = []
    for batch in table.to_batches(max_chunksize=65536):
        start = len(events) + len(rejects)
        for i, rec in enumerate(batch.to_pylist(), start=start + 1):
            _append(events, rejects, rec, path, i)
    return events, rejects


def read_click_log(path: str | Path) -> tuple[list[ClickEvent], list[Reject]]:
    """Read a click log; bad rows are skipped and reported, good rows are returned in file order.

    Args:
        path: a ``.jsonl``/``.ndjson``/``.json`` file (one JSON object a line, ``.gz`` allowed) or a
            ``.parquet`` file with the same columns.

    Returns:
        ``(events, rejects)``; each reject names the file, the line (1-based; for Parquet the data
        row) and the field at fault.

    Raises:
        ClickLogError: the file is missing, of an unknown format, or (Parquet) lacks a column.
    """
    path = Path(path)
    parquet = _is_parquet(path)
    if not path.is_file():
        raise ClickLogError(f"{path}: no such click-log file")
    events, rejects = _read_parquet(path) if parquet else _read_jsonl(path)
    if rejects:
        log.warning("%s: %d bad row(s) skipped, first: %s", path, len(rejects), rejects[0])
    log.info("%s: read %d events", path, len(events))
    return events, rejects


def events_table(events: Iterable[ClickEvent]) -> pa.Table:
    """The events as a columnar table in :data:`SCHEMA` (timestamps as epoch seconds)."""
    cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for ev in events:
        for name, value in ev.to_record().items():
            cols[name].append(value)
    return pa.table(cols, schema=SCHEMA)


def write_click_log(events: Iterable[ClickEvent], path: str | Path) -> Path:
    """Write events atomically as JSONL (``.gz`` compressed by name) or Parquet, by extension."""
    path = Path(path)
    if _is_parquet(path):
        with atomic_path(path) as tmp:
            pq.write_table(events_table(events), tmp)
        return path
    with atomic_path(path) as tmp:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8") as fh:
            for ev in events:
                fh.write(json.dumps(ev.to_record(), ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


__all__ = [
    "SCHEMA",
    "ClickEvent",
    "ClickLogError",
    "EventType",
    "event_from_record",
    "events_table",
    "normalize_query",
    "parse_timestamp",
    "read_click_log",
    "write_click_log",
]
