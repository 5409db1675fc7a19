"""A tiny typed observer list: handlers of one kind of event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger("switchboard.client")


class Signal(Generic[T]):
    """Handlers called in order with each value; a failing handler is logged and skipped."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[Callable[[T], None]] = []

    def connect(self, handler: Callable[[T], None]) -> Callable[[], None]:
        """Call `handler` with every value; returns a function that stops it."""
        self._handlers.append(handler)

        def stop() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return stop

    def emit(self, value: T) -> None:
        """Give `value` to every handler."""
        for handler in list(self._handlers):
            try:
                handler(value)
            except Exception:
                log.exception("%s handler failed", self.name)
