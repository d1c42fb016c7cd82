"""Locks for an index shared by threads (a readers-writer lock) and by processes (``flock`` on its folder).

:class:`ReadWriteLock` lets many threads search at once while an update waits for them, then runs alone;
a waiting writer holds new readers back so a busy reader crowd cannot starve it. It is re-entrant: a
thread that holds it (to read or to write) may take it again to read, and a writer may write again.

:func:`folder_lock` takes ``flock`` on a folder itself, so no lock file joins the folder's layout. A
reader holds it shared while it loads an index; the writer takes it exclusively, without waiting, only
to delete old generations, and skips the deletion (left to its next save) while anyone reads.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar


class ReadWriteLock:
    """Many readers or one writer, phase-fair and re-entrant per thread.

    Phase-fair: a waiting writer holds back readers that arrive after it, and when a writer finishes the
    readers waiting then go first; so neither a stream of searches nor a loop of updates starves the
    other side.

    Example:
        >>> lock = ReadWriteLock()
        >>> with lock.write(), lock.read():  # a writer may read (and write) again
        ...     pass
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None  # thread id of the writer
        self._writers_waiting = 0
        self._readers_waiting = 0
        self._read_turn = False  # set when a writer leaves with readers waiting: they go next
        self._local = threading.local()

    def _depth(self) -> int:
        depth: int = getattr(self._local, "depth", 0)
        return depth

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared for the block."""
        nested = self._writer == threading.get_ident() or self._depth() > 0
        if not nested:
            with self._cond:
                self._readers_waiting += 1
                try:
                    while self._writer is not None or (self._writers_waiting and not self._read_turn):
                        self._cond.wait()
                finally:
                    self._readers_waiting -= 1
                    if not self._readers_waiting:
                        self._read_turn = False
                self._readers += 1
        self._local.depth = self._depth() + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if not nested:
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock exclusively for the block (RuntimeError if this thread holds it only to read)."""
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        if self._depth() > 0:
            raise RuntimeError("cannot update the index while this thread holds it for reading")
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers or self._read_turn:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._read_turn = self._readers_waiting > 0
                self._cond.notify_all()


class _Locked(Protocol):
    _lock: ReadWriteLock


_S = TypeVar("_S", bound=_Locked)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def write_locked(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Decorate a method that updates ``self``: it runs under ``self._lock.write()``."""

    @functools.wraps(method)
    def locked(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock.write():
            return method(self, *args, **kwargs)

    return locked


@contextlib.contextmanager
def folder_lock(path: Path, *, shared: bool, wait: bool = True) -> Iterator[bool]:
    """``flock`` the folder ``path`` for the block; yields whether the caller may go ahead.

    False only when ``wait`` is off and another holder conflicts. Where there is no ``flock`` (not POSIX,
    a filesystem without it) or no folder yet, it yields True without locking anything.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield True
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield True
        return
    try:
        flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
            locked = True
        except BlockingIOError:
            locked = False
        except OSError:  # no flock on this filesystem
            locked = None
        try:
            yield locked is not False
        finally:
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["ReadWriteLock", "folder_lock", "write_locked"]
