"""Interactive search: a session remembers the query, what was shown and what the user liked.

Refinement is Rocchio's relevance feedback on the searched space:
``q' = normalize(a * q + b * mean(liked) - c * mean(disliked))``; every round searches with ``q'`` and
leaves out everything the session has already shown (and liked or disliked).

:class:`SessionStore` keeps sessions in memory with a time-to-live and a size cap (oldest evicted), thread
safe, for one service process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from samestyle.errors import NotFoundError
from samestyle.index.filters import Filter
from samestyle.models.base import l2_normalize


@dataclass(frozen=True)
class Rocchio:
    """Weights of the original query (``a``), the liked (``b``) and the disliked (``c``) examples."""

    a: float = 1.0
    b: float = 0.8
    c: float = 0.3

    def refine(self, query: np.ndarray, liked: np.ndarray, disliked: np.ndarray) -> np.ndarray:
        """``query`` [dim], ``liked`` [L, dim], ``disliked`` [D, dim] -> the refined unit vector."""
        q = self.a * np.asarray(query, np.float32)
        if len(liked):
            q = q + self.b * liked.mean(0)
        if len(disliked):
            q = q - self.c * disliked.mean(0)
        return l2_normalize(q[None])[0]


@dataclass
class RefineSession:
    """One user's search: the space and vector it started from, feedback so far and what was shown."""

    id: str
    space: str
    query: np.ndarray
    filter: Filter | None = None
    liked: list[str] = field(default_factory=list)
    disliked: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    rounds: int = 0
    touched: float = field(default_factory=time.monotonic)

    def feedback(self, liked: Sequence[str] = (), disliked: Sequence[str] = ()) -> None:
        """Record feedback; a later mark wins (liking something disliked before moves it)."""
        for pid in liked:
            if pid in self.disliked:
                self.disliked.remove(pid)
            if pid not in self.liked:
                self.liked.append(pid)
        for pid in disliked:
            if pid in self.liked:
                self.liked.remove(pid)
            if pid not in self.disliked:
                self.disliked.append(pid)
        self.seen.update(liked, disliked)


class SessionStore:
    """Sessions by id, dropped ``ttl_s`` seconds after their last use or when over ``max_sessions``."""

    def __init__(self, ttl_s: float = 3600.0, max_sessions: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, RefineSession] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, space: str, query: np.ndarray, filter: Filter | None = None) -> RefineSession:
        session = RefineSession(secrets.token_urlsafe(12), space, np.asarray(query, np.float32), filter)
        with self._lock:
            self._expire()
            self._sessions[session.id] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str) -> RefineSession:
        with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                raise NotFoundError(
                    f"no search session '{session_id}' (unknown, or expired after {self.ttl_s:.0f} s)"
                )
            session.touched = time.monotonic()
            self._sessions.move_to_end(session_id)
            return session

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.touched >= cutoff:
                break
            self._sessions.popitem(last=False)


__all__ = ["RefineSession", "Rocchio", "SessionStore"]
