"""Request bodies as declared models, with WaGo's decoding rules.

WaGo decodes JSON with Go's `encoding/json`: keys match struct fields in any letter case, unknown
keys are ignored, and a value of the wrong type fails the whole decode. Required fields that are
empty are reported as `Missing <Field> in Payload`. This module gives pydantic models the same
behaviour and turns validation errors into one precise WaGo error string.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from chalicelib.core.errors import DomainError
from chalicelib.core.jid import could_not_parse

#: A request field's address that does not parse (chalicelib/routes/fields.py raises it).
UNPARSEABLE_ADDRESS = "unparseable_address"

DECODE_ERROR = "Could not decode Payload"

M = TypeVar("M", bound="WagoModel")

_TYPE_WORDS = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "int_type": "an integer",
    "float_type": "a number",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
}


class WagoModel(BaseModel):
    """Base of every request and response body: WaGo's casing out, any casing in."""

    # defer_build: validators are built on first use, not at import (Lambda cold start).
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _fold_key_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        index = _key_index(cls)
        folded: dict[str, Any] = {}
        exact: set[str] = set()
        for key, value in data.items():
            target = index.get(key.lower()) if isinstance(key, str) else None
            if target is None:
                continue
            # An exact spelling wins over a differently-cased duplicate, as in Go.
            if target in exact:
                continue
            folded[target] = value
            if key == target:
                exact.add(target)
        return folded

    def dump(self) -> dict[str, Any]:
        """The body as WaGo spells it."""
        return self.model_dump(mode="json", by_alias=True)


def _key_index(model: type[BaseModel]) -> dict[str, str]:
    cached = model.__dict__.get("__wago_key_index__")
    if cached is None:
        cached = {}
        for name, field in model.model_fields.items():
            key = field.alias or name
            cached[key.lower()] = key
            cached.setdefault(name.lower(), key)
        setattr(model, "__wago_key_index__", cached)
    return cached


def decode_json(raw: bytes | str | None, max_bytes: int) -> Any:
    """Raw request body -> JSON value; empty body is an empty object."""
    if raw is None:
        return {}
    size = len(raw)
    if size > max_bytes:
        raise DomainError(413, f"Payload too large: {size} bytes exceeds the limit of {max_bytes} bytes")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DomainError(400, f"{DECODE_ERROR}: body is not UTF-8") from None
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise DomainError(400, DECODE_ERROR) from None


def parse_body(model: type[M], raw: bytes | str | None, max_bytes: int) -> M:
    data = decode_json(raw, max_bytes)
    if not isinstance(data, dict):
        raise DomainError(400, f"{DECODE_ERROR}: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DomainError(400, describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """The first validation problem as one WaGo-style sentence."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    field = loc[0] if loc else "Payload"
    where = ".".join(loc) if loc else "Payload"
    kind = error["type"]
    empty = kind == "string_too_short" or (kind == "too_short" and not error.get("input"))
    if kind == "missing" or (empty and len(loc) == 1):  # a list with too few items is Invalid, not Missing
        return f"Missing {field} in Payload"
    if kind == UNPARSEABLE_ADDRESS:
        return could_not_parse(next((part for part in reversed(loc) if not part.isdigit()), field))
    if kind in _TYPE_WORDS or kind.endswith("_type"):
        return f"{DECODE_ERROR}: {where} must be {_TYPE_WORDS.get(kind, kind.removesuffix('_type'))}"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    return f"Invalid {where} in Payload: {message}"
