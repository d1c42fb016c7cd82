"""Names -> factories, used only where a config string or CLI option must become an object."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from samestyle.errors import UnknownComponentError

T = TypeVar("T")


class Registry(Generic[T]):
    """A small name -> factory table. ``build(name, **kw)`` creates the component.

    Example:
        >>> encoders: Registry[object] = Registry("encoder")
        >>> @encoders.register("fake")
        ... def _fake(**kw: object) -> object:
        ...     return "fake"
        >>> encoders.build("fake")
        'fake'
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._factories[name] = factory
            return factory

        return deco

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            known = sorted(self._factories)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UnknownComponentError(
                f"unknown {self.kind} '{name}'.{hint} Known: {', '.join(known) or '(none)'}"
            ) from None

    def build(self, name: str, **kwargs: object) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
