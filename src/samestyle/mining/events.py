"""One click-log row: the event types, :class:`ClickEvent`, and the validation of a raw record.

:func:`event_from_record` turns one mapping (a JSON object, a Parquet row) into a :class:`ClickEvent`
or raises :class:`BadField` naming the field at fault; :mod:`samestyle.mining.clicklog` reads and
writes whole files and turns each ``BadField`` into a :class:`~samestyle.types.Reject`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


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


class BadField(ValueError):
    """One record's bad value: ``field`` names it (None: the whole record), ``reason`` says what is wrong."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _text_field(rec: Mapping[str, Any], name: str, *, required: bool, empty_ok: bool = False) -> str | None:
    """A string (or integer) field, stripped. ``empty_ok``: the key must exist but may be null/empty."""
    if name not in rec:
        if required:
            raise BadField(name, "missing")
        return None
    value = rec[name]
    if value is None:
        if empty_ok:
            return ""
        if required:
            raise BadField(name, "is null")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadField(name, f"must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text and not empty_ok:
        if required:
            raise BadField(name, "is empty")
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
            raise BadField("position", f"missing (required for '{event}')")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadField("position", f"must be an integer >= 1, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise BadField("position", f"must be an integer >= 1, got {value!r}")
    if value < 1:
        raise BadField("position", f"must be >= 1, got {value!r}")
    return int(value)


def event_from_record(rec: Mapping[str, Any]) -> ClickEvent:
    """Validate one row (a mapping) into a :class:`ClickEvent`. Raises ``ValueError`` with ``.field``."""
    session_id = _text_field(rec, "session_id", required=True)
    query = _text_field(rec, "query", required=True, empty_ok=True)
    product_id = _text_field(rec, "product_id", required=True)
    raw_event = rec.get("event")
    if raw_event is None:
        raise BadField("event", "missing")
    try:
        event = EventType(str(raw_event).strip().lower())
    except ValueError:
        known = ", ".join(e.value for e in EventType)
        raise BadField("event", f"unknown event {raw_event!r} (known: {known})") from None
    position = _position(rec.get("position"), event)
    if rec.get("timestamp") is None:
        raise BadField("timestamp", "missing")
    try:
        timestamp = parse_timestamp(rec["timestamp"])
    except ValueError as exc:
        raise BadField("timestamp", str(exc)) from None
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


__all__ = ["BadField", "ClickEvent", "EventType", "event_from_record", "parse_timestamp"]
