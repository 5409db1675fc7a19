"""JSON value types for payloads and acks (defined in the domain, re-exported here)."""

from __future__ import annotations

from domain.json_types import JsonObject, JsonValue

__all__ = ["JsonObject", "JsonValue"]
