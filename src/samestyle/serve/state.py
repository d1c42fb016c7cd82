"""What one running app holds: the A/B variants and their services, the catalogue view, the event log.

Searches run concurrently (FastAPI runs sync routes in a thread pool); catalogue writes take the
write side of a readers-writer lock, so no search sees an index half-way through an upsert or a save.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from samestyle.errors import ConfigError, NotFoundError
from samestyle.models.recognizer import CategoryRecognizer
from samestyle.search.service import SearchService
from samestyle.serve.abtest import assign_variant
from samestyle.serve.events import EventLog, ServedList
from samestyle.serve.products import ProductStore
from samestyle.serve.settings import ServeSettings
from samestyle.types import Hit

log = logging.getLogger(__name__)

DEFAULT_VARIANT = "default"


class RWLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class Variant:
    """One A/B arm: its name, the service (shared by arms on the same index) and the text/image space."""

    name: str
    service: SearchService
    space: str | None = None


@dataclass
class AppState:
    settings: ServeSettings
    variants: list[Variant]
    store: ProductStore
    events: EventLog
    lock: RWLock = field(default_factory=RWLock)
    ready: threading.Event = field(default_factory=threading.Event)
    ready_error: str | None = None
    categories: list[str] = field(default_factory=list)  # category paths (two levels) for the page's filter
    recognizer: CategoryRecognizer | None = None  # /api/categorize (settings.recognizer, loaded at start)
    _sessions: OrderedDict[str, tuple[str, str]] = field(default_factory=OrderedDict)  # id -> (arm, query)
    _sessions_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def control(self) -> Variant:
        return self.variants[0]

    def services(self) -> list[SearchService]:
        """Each distinct service once (arms on the same index share one)."""
        seen: dict[int, SearchService] = {}
        for v in self.variants:
            seen.setdefault(id(v.service), v.service)
        return list(seen.values())

    def variant_for(self, visitor_id: str | None) -> Variant:
        """The visitor's arm (a stable hash of the id); the control arm without a visitor id."""
        if visitor_id is None or len(self.variants) == 1:
            return self.control
        name = assign_variant(visitor_id, [v.name for v in self.variants], self.settings.experiment)
        return next(v for v in self.variants if v.name == name)

    def remember_session(self, session_id: str, variant: str, query: str) -> None:
        with self._sessions_lock:
            self._sessions[session_id] = (variant, query)
            while len(self._sessions) > self.settings.max_sessions:
                self._sessions.popitem(last=False)

    def session_variant(self, session_id: str) -> tuple[Variant, str]:
        """The arm that started a refinement session, and the session's logged query."""
        with self._sessions_lock:
            found = self._sessions.get(session_id)
        if found is None:
            raise NotFoundError(
                f"unknown or expired session '{session_id}': start a new one (POST /api/sessions)"
            )
        return next(v for v in self.variants if v.name == found[0]), found[1]

    def serve(
        self,
        variant: Variant,
        kind: str,
        query: str,
        hits: Sequence[Hit],
        visitor_id: str | None,
        session_id: str | None,
    ) -> ServedList:
        """Register a result list (and log its impressions when a visitor is known)."""
        served = ServedList(
            request_id=uuid.uuid4().hex[:20],
            variant=variant.name,
            kind=kind,
            query=query,
            visitor_id=visitor_id,
            session_id=session_id or visitor_id,
            positions={h.id: i for i, h in enumerate(hits, start=1)},
        )
        self.events.served(served)
        return served


def build_variants(
    service: SearchService | Mapping[str, SearchService], settings: ServeSettings
) -> list[Variant]:
    """One ``Variant`` per A/B arm: ``service`` alone serves one arm; a mapping names the arms (in order)."""
    if isinstance(service, SearchService):
        if settings.variants:
            raise ConfigError("settings name A/B variants: pass create_app a mapping name -> SearchService")
        return [Variant(DEFAULT_VARIANT, service)]
    if not service:
        raise ConfigError("create_app needs at least one search service")
    spaces = {v.name: v.space for v in settings.variants}
    unknown = set(spaces) - set(service)
    if unknown:
        raise ConfigError(f"variants {', '.join(sorted(unknown))} have no search service")
    return [Variant(name, svc, spaces.get(name)) for name, svc in service.items()]


def open_variants(index_dir: Path, settings: ServeSettings) -> dict[str, SearchService]:
    """Open the services of ``settings.variants`` (one per distinct index folder), or ``index_dir`` alone."""
    if not settings.variants:
        return {DEFAULT_VARIANT: SearchService.open(index_dir)}
    by_dir: dict[Path, SearchService] = {}
    out: dict[str, SearchService] = {}
    for spec in settings.variants:
        key = spec.index_dir.resolve()
        if key not in by_dir:
            by_dir[key] = SearchService.open(spec.index_dir)
        out[spec.name] = by_dir[key]
    return out


__all__ = ["DEFAULT_VARIANT", "AppState", "RWLock", "Variant", "build_variants", "open_variants"]
