"""The orjson shim behind python-socketio's json hook, and the settings that choose it."""

from __future__ import annotations

import json

import pytest

from adapters.socketio.fastjson import OrjsonShim, load_orjson
from application.containers import _json_module
from application.settings import Settings, SettingsError


def shim() -> OrjsonShim:
    orjson = load_orjson()
    assert orjson is not None, "orjson is a dev dependency"
    return OrjsonShim(orjson)


def test_dumps_is_compact_text_like_the_stdlib_with_separators() -> None:
    value = {"a": [1, None, True, "é", {"b": 1.5}], "t": "<script>"}
    assert shim().dumps(value, separators=(",", ":")) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    )


def test_loads_round_trips_and_falls_back_for_what_orjson_refuses() -> None:
    assert shim().loads('{"x":[1,2,{"y":null}]}') == {"x": [1, 2, {"y": None}]}
    assert shim().loads(b'["a"]') == ["a"]
    # a lone surrogate escape: orjson refuses it, the stdlib parses it
    assert shim().loads('["\\ud800"]') == ["\ud800"]
    with pytest.raises(ValueError, match="Expecting"):
        shim().loads("{not json")


def test_dumps_falls_back_for_integers_beyond_64_bits() -> None:
    assert shim().dumps({"n": 10**30}) == '{"n":1000000000000000000000000000000}'


def test_settings_choose_the_json_module() -> None:
    base = Settings.from_env({}, dev=True)
    assert isinstance(_json_module(base), OrjsonShim)  # auto: installed
    stdlib = Settings.from_env({"SWITCHBOARD_JSON": "stdlib"}, dev=True)
    assert _json_module(stdlib) is None
    with pytest.raises(SettingsError, match="SWITCHBOARD_JSON"):
        Settings.from_env({"SWITCHBOARD_JSON": "simdjson"}, dev=True)
