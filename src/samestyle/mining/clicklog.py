"""The click-log format: one search event per row, JSONL (optionally gzipped) or Parquet.

Fields (see ``docs/click-logs.md``): ``session_id``, ``query`` (may be empty: a browse event),
``product_id``, ``event`` (impression | click | cart | order), ``position`` (rank shown, >= 1;
optional for cart/order), ``timestamp`` (ISO-8601 string or epoch seconds), and the optional
``visitor_id`` and ``variant`` (the A/B arm that served the result). Unknown fields are ignored.

A bad row (not JSON, a missing field, an unknown event, a bad position or timestamp) becomes a
:class:`~samestyle.types.Reject` naming the file, the line and the field; reading goes on.

Example:
    >>> events, rejects = read_click_log("clicks.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from samestyle.errors import SamestyleError
from samestyle.fsio import atomic_path
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


class EventType(StrEnum):
    """What the user did with a product shown for a query."""

    IMPRESSION = "impression"
    CLICK = "click"
    CART = "cart"
    ORDER = "order"


@dataclass(frozen=True, slots=True)
class ClickEvent:
    """One row of a click log. ``timestamp`` is epoch seconds (UTC); ``position`` is 1-based."""

    session_id: str
    query: str
    product_id: str
    event: EventType
    timestamp: float
    position: int | None = None
    visitor_id: str | None = None
    variant: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The row as plain JSON-able data (``event`` as its string)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "event": str(self.event)}


class _BadField(ValueError):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


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


def _text_field(rec: Mapping[str, Any], name: str, *, required: bool, empty_ok: bool = False) -> str | None:
    """A string (or integer) field, stripped. ``empty_ok``: the key must exist but may be null/empty."""
    if name not in rec:
        if required:
            raise _BadField(name, "missing")
        return None
    value = rec[name]
    if value is None:
        if empty_ok:
            return ""
        if required:
            raise _BadField(name, "is null")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadField(name, f"must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text and not empty_ok:
        if required:
            raise _BadField(name, "is empty")
        return None
    return text


def parse_timestamp(value: object) -> float:
    """Epoch seconds from a number or an ISO-8601 string (no zone means UTC). Raises ValueError."""
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.timestamp()
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected epoch seconds or an ISO-8601 string, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ValueError(f"not ISO-8601 or epoch seconds: {value!r}") from None
            return stamp.timestamp() if stamp.tzinfo else stamp.replace(tzinfo=UTC).timestamp()
    else:
        raise ValueError(f"expected epoch seconds or an ISO-8601 string, got {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"timestamp is not finite: {value!r}")
    return seconds


def _position(value: object, event: EventType) -> int | None:
    if value is None:
        if event in (EventType.IMPRESSION, EventType.CLICK):
            raise _BadField("position", f"missing (required for '{event}')")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadField("position", f"must be an integer >= 1, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise _BadField("position", f"must be an integer >= 1, got {value!r}")
    if value < 1:
        raise _BadField("position", f"must be >= 1, got {value!r}")
    return int(value)


def event_from_record(rec: Mapping[str, Any]) -> ClickEvent:
    """Validate one row (a mapping) into a :class:`ClickEvent`. Raises ``ValueError`` with ``.field``."""
    session_id = _text_field(rec, "session_id", required=True)
    query = _text_field(rec, "query", required=True, empty_ok=True)
    product_id = _text_field(rec, "product_id", required=True)
    raw_event = rec.get("event")
    if raw_event is None:
        raise _BadField("event", "missing")
    try:
        event = EventType(str(raw_event).strip().lower())
    except ValueError:
        known = ", ".join(e.value for e in EventType)
        raise _BadField("event", f"unknown event {raw_event!r} (known: {known})") from None
    position = _position(rec.get("position"), event)
    if rec.get("timestamp") is None:
        raise _BadField("timestamp", "missing")
    try:
        timestamp = parse_timestamp(rec["timestamp"])
    except ValueError as exc:
        raise _BadField("timestamp", str(exc)) from None
    return ClickEvent(
        session_id=session_id or "",
        query=query or "",
        product_id=product_id or "",
        event=event,
        timestamp=timestamp,
        position=position,
        visitor_id=_text_field(rec, "visitor_id", required=False),
        variant=_text_field(rec, "variant", required=False),
    )


def _is_parquet(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return True
    if name.endswith(JSONL_SUFFIXES):
        return False
    raise ClickLogError(f"{path}: unknown click-log format; name it *.jsonl (optionally .gz) or *.parquet")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        yield from enumerate(fh, start=1)


def _read_jsonl(path: Path) -> tuple[list[ClickEvent], list[Reject]]:
    events: list[ClickEvent] = []
    rejects: list[Reject] = []
    for line_no, raw in _jsonl_rows(path):
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
    except _BadField as exc:
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
