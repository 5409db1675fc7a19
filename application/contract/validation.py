"""Strict structuring of inbound payloads with cattrs, and field-level error details.

cattrs turns a decoded JSON payload into an attrs payload class. The converter here is
strict where cattrs' defaults are lenient (`"5"` is not an int, `"abc"` is not a list, a
bool is not an int) and reads constraints from `Annotated` metadata (`Length`, `Bounds`),
so every failure carries the path of the field that caused it.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable
from typing import Annotated, TypeVar

import attrs
import cattrs
from cattrs.cols import is_sequence, list_structure_factory

from application.json_types import JsonValue
from domain.errors import ValidationFailed

T = TypeVar("T")


@attrs.frozen
class Length:
    """Bounds on the length of a string or a list."""

    min: int
    max: int


@attrs.frozen
class Bounds:
    """Bounds on an integer, either side optional."""

    min: int | None = None
    max: int | None = None


class FieldError(ValueError):
    """A value broke a rule; its text is shown to the client as is."""


StructureFn = Callable[[object, type], object]


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise FieldError("must be a string")
    return value


def _strict_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("must be an integer")
    return value


def _strict_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise FieldError("must be true or false")
    return value


def _json_object(value: object, _: type) -> object:
    if not isinstance(value, dict):
        raise FieldError("must be a JSON object")
    return value


def _is_enum(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, enum.Enum)


def _enum_hook(cls: type) -> StructureFn:
    choices = [str(member.value) for member in typing.cast("type[enum.Enum]", cls)]

    def structure(value: object, _: type) -> object:
        if isinstance(value, str) and value in choices:
            return typing.cast("type[enum.Enum]", cls)(value)
        raise FieldError(f"must be one of: {', '.join(choices)}")

    return structure


def _is_constrained(cls: type) -> bool:
    return typing.get_origin(cls) is Annotated


def _constrained_hook_factory(converter: cattrs.Converter) -> Callable[[type], StructureFn]:
    def factory(cls: type) -> StructureFn:
        base, *metadata = typing.get_args(cls)
        inner = converter.get_structure_hook(base)

        def structure(value: object, _: type) -> object:
            result = inner(value, base)
            for rule in metadata:
                sized = isinstance(result, str | list | tuple)
                if isinstance(rule, Length) and sized and not rule.min <= len(result) <= rule.max:
                    unit = "characters" if isinstance(result, str) else "items"
                    raise FieldError(f"must have {rule.min} to {rule.max} {unit}")
                if isinstance(rule, Bounds) and isinstance(result, int):
                    if rule.min is not None and result < rule.min:
                        raise FieldError(f"must be at least {rule.min}")
                    if rule.max is not None and result > rule.max:
                        raise FieldError(f"must be at most {rule.max}")
            return result

        return structure

    return factory


def _list_hook_factory(converter: cattrs.Converter) -> Callable[[type], StructureFn]:
    def factory(cls: type) -> StructureFn:
        structure_items = list_structure_factory(cls, converter)

        def structure(value: object, _: type) -> object:
            if not isinstance(value, list):
                raise FieldError("must be a list")
            return structure_items(value, cls)

        return structure

    return factory


def _object_hook_factory(converter: cattrs.Converter) -> Callable[[type], StructureFn]:
    def factory(cls: type) -> StructureFn:
        inner: Callable[[dict[str, object], type], object]
        inner = converter.gen_structure_attrs_fromdict(cls)

        def structure(value: object, _: type) -> object:
            if not isinstance(value, dict):
                raise FieldError("must be a JSON object")
            # JSON null for an optional field means "not given"
            return inner({k: v for k, v in value.items() if v is not None}, cls)

        return structure

    return factory


def _is_list(cls: type) -> bool:
    origin: object = typing.get_origin(cls)
    return is_sequence(cls) and origin is list


def make_converter() -> cattrs.Converter:
    """A cattrs converter for payload classes: strict types, constraints, null as absent."""
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook_func(lambda cls: cls == dict[str, object], _json_object)
    converter.register_structure_hook_factory(_is_enum, _enum_hook)
    converter.register_structure_hook_factory(_is_constrained, _constrained_hook_factory(converter))
    converter.register_structure_hook_factory(
        _is_list,
        _list_hook_factory(converter),
    )
    converter.register_structure_hook_factory(attrs.has, _object_hook_factory(converter))
    return converter


def _describe(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, FieldError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "is required"
    return "has an invalid value"


def field_errors(exc: BaseException) -> list[dict[str, JsonValue]]:
    """Flatten a cattrs error into `[{"path": "$.field", "message": "..."}]`."""
    fields: list[dict[str, JsonValue]] = []
    for line in cattrs.transform_error(exc, path="$", format_exception=_describe):
        message, _, path = line.rpartition(" @ ")
        fields.append({"path": path, "message": message})
    return fields


_CONVERTER = make_converter()


def parse(payload_type: type[T], raw: object) -> T:
    """Structure `raw` into `payload_type` or raise `ValidationFailed` with field details."""
    try:
        return _CONVERTER.structure(raw, payload_type)
    except FieldError as exc:  # the payload itself is not an object
        details: list[dict[str, JsonValue]] = [{"path": "$", "message": str(exc)}]
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        details = field_errors(exc)
    raise ValidationFailed("the payload is not valid", details={"fields": details})
