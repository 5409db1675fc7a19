"""orjson behind python-socketio's `json` hook (optional: `pip install orjson`).

python-socketio calls `json.dumps(obj, separators=(",", ":"))` and expects a `str`;
orjson returns bytes and takes no `separators`, hence this shim. Anything orjson refuses
(integers beyond 64 bits, which a client may send) falls back to the standard library,
so the payload still reaches validation and gets its structured error.
"""

from __future__ import annotations

import json
from types import ModuleType


def load_orjson() -> ModuleType | None:
    """The orjson module, or None when it is not installed."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson


class OrjsonShim:
    """A `json`-module lookalike for python-socketio and python-engineio."""

    def __init__(self, orjson: ModuleType) -> None:
        self._dumps = orjson.dumps
        self._loads = orjson.loads
        self._error = orjson.JSONDecodeError

    def dumps(self, obj: object, *args: object, **kwargs: object) -> str:
        """Serialise to a `str` (compact, like `separators=(",", ":")`)."""
        try:
            encoded: bytes = self._dumps(obj)
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))
        return encoded.decode()

    def loads(self, text: str | bytes, *args: object, **kwargs: object) -> object:
        """Parse JSON text."""
        try:
            value: object = self._loads(text)
        except self._error:
            return json.loads(text)
        return value
