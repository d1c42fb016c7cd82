"""The service's event log: impressions of every result list served, clicks, carts and orders.

Rows are :class:`samestyle.mining.events.ClickEvent` in the click-log format of ``docs/click-logs.md``
(JSONL), each tagged with the A/B variant that served it, so the file feeds both ``samestyle
ab-report`` and ``samestyle mine``. The file is appended to, one line per event, flushed per result list;
a crash can leave at most a partial last line, which ``read_click_log`` reports and skips.

Impressions are only logged for requests that name a visitor (``X-Visitor-Id``): without one a request
is served by the control arm and is not part of the experiment.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from samestyle.errors import ConfigError
from samestyle.mining.events import ClickEvent, EventType

log = logging.getLogger(__name__)

MEMO_SIZE = 50_000  # result lists remembered so that a click can name its list by request_id


@dataclass(frozen=True)
class ServedList:
    """One result list as served: who saw it, under which arm, and each product's position."""

    request_id: str
    variant: str
    kind: str
    query: str
    visitor_id: str | None
    session_id: str | None
    positions: dict[str, int] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)


class EventLog:
    """Appends events to ``path`` (JSONL) and remembers recent result lists. ``path`` None: log nothing."""

    def __init__(self, path: Path | None, memo_size: int = MEMO_SIZE) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()
        self._memo: OrderedDict[str, ServedList] = OrderedDict()
        self._memo_size = memo_size
        if path is not None:
            if path.suffix.lower() not in (".jsonl", ".ndjson"):
                raise ConfigError(f"event log {path}: name it *.jsonl (the click-log format, appended to)")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the app's lifetime

    @property
    def enabled(self) -> bool:
        return self._fh is not None

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def _write(self, events: list[ClickEvent]) -> None:
        if self._fh is None or not events:
            return
        lines = "".join(
            json.dumps(ev.to_record(), ensure_ascii=False, separators=(",", ":")) + "\n" for ev in events
        )
        with self._lock:
            if self._fh is not None:
                self._fh.write(lines)
                self._fh.flush()

    def served(self, served: ServedList) -> None:
        """Remember a result list; log one impression per product when the visitor is known."""
        with self._lock:
            self._memo[served.request_id] = served
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        if served.visitor_id is None:
            return
        ts = round(served.timestamp, 3)
        self._write(
            [
                ClickEvent(
                    served.session_id or served.visitor_id,
                    served.query,
                    pid,
                    EventType.IMPRESSION,
                    ts,
                    pos,
                    served.visitor_id,
                    served.variant,
                )
                for pid, pos in served.positions.items()
            ]
        )

    def lookup(self, request_id: str) -> ServedList | None:
        with self._lock:
            return self._memo.get(request_id)

    def action(
        self,
        event: EventType,
        product_id: str,
        visitor_id: str,
        variant: str,
        session_id: str | None = None,
        query: str | None = None,
        position: int | None = None,
        request_id: str | None = None,
    ) -> ClickEvent:
        """Log a click, cart or order. A known ``request_id`` supplies query, position and session."""
        served = self.lookup(request_id) if request_id else None
        if served is not None:
            query = served.query if query is None else query
            position = served.positions.get(product_id, position)
            session_id = session_id or served.session_id
        if event == EventType.CLICK and position is None:
            raise ConfigError(
                "a click needs its position: send the request_id of the result list or a position >= 1"
            )
        ev = ClickEvent(
            session_id or visitor_id,
            query or "",
            product_id,
            event,
            round(time.time(), 3),
            position,
            visitor_id,
            variant,
        )
        self._write([ev])
        return ev


__all__ = ["MEMO_SIZE", "EventLog", "ServedList"]
