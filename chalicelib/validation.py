"""Request bodies as declared models, with WaGo's decoding rules.

WaGo decodes JSON with Go's `encoding/json`: keys match struct fields in any letter case, unknown
keys are ignored, and a value of the wrong type fails the whole decode. Required fields that are
empty are reported as `Missing <Field> in Payload`. This module gives pydantic models the same
behaviour and turns validation errors into one precise WaGo error string.

Numbers and nesting are bounded where the JSON is read, before any model or state sees it:
- every number literal (under any key, known or not) is an ASCII JSON number of at most
  `MAX_NUMBER_CHARS` characters; integers fit in Go's int64 (what WaGo and whatsmeow
  decode into; protobuf's int64 fields too), floats are finite (`NaN`/`Infinity` are not JSON: RFC 8259 §6);
- a body nests at most `MAX_JSON_DEPTH` arrays/objects (a quoted message quoting a quoted message...);
- query parameters that are numbers go through `query_int` (ASCII digits only, bounded);
- a `\\uD800`-`\\uDFFF` escape that is not half of a surrogate pair (a truncated emoji) becomes U+FFFD,
  in keys and values, as Go's decoder does: such a string cannot be encoded as UTF-8, so it could
  otherwise reach SQS, DynamoDB or a reply only to fail there.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from chalicelib.core.errors import DomainError
from chalicelib.core.jid import could_not_parse

#: A request field's address that does not parse (chalicelib/routes/fields.py raises it).
UNPARSEABLE_ADDRESS = "unparseable_address"

DECODE_ERROR = "Could not decode Payload"

M = TypeVar("M", bound="WagoModel")

#: Deepest nesting of arrays/objects a body may have (WaGo's bodies need 5; a reply quoting a reply
#: quoting ... stays well inside). Deeper bodies could exhaust recursion in the converters behind.
MAX_JSON_DEPTH = 32
#: Longest number literal: a 64-bit integer has at most 20 digits; floats need no more than 32 characters.
MAX_NUMBER_CHARS = 32
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
#: A JSON escape of a surrogate (cheap pre-check: a body without one needs no walk).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

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
        setattr(model, "__wago_key_index__", cached)  # noqa: B010 - a cache that BaseModel does not declare (mypy)
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
        data = json.loads(raw, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
    except json.JSONDecodeError:
        raise DomainError(400, DECODE_ERROR) from None
    except RecursionError:
        raise DomainError(400, f"{DECODE_ERROR}: nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_depth(data)
    if _SURROGATE_ESCAPE.search(raw):
        data = _replace_lone_surrogates(data)
    return data


def _replace_lone_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate (json keeps an unpaired `\\ud800` as is) replaced by U+FFFD,
    as Go's encoding/json does. Recursion is bounded by check_depth, which ran first."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(key): _replace_lone_surrogates(item) for key, item in value.items()}
    return value


def _number_error(literal: str, why: str) -> DomainError:
    shown = literal if len(literal) <= 24 else f"{literal[:20]}... ({len(literal)} characters)"
    return DomainError(400, f"{DECODE_ERROR}: number {shown} {why}")


def _json_int(literal: str) -> int:
    # The json module's number pattern is ASCII already; the length bound comes before int() (which
    # refuses literals over 4300 digits with a ValueError, a 500 before this hook existed).
    if len(literal) > MAX_NUMBER_CHARS:
        raise _number_error(literal, f"is longer than {MAX_NUMBER_CHARS} characters")
    value = int(literal)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _number_error(literal, "does not fit in a 64-bit integer")
    return value


def _json_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _number_error(literal, f"is longer than {MAX_NUMBER_CHARS} characters")
    value = float(literal)
    if not math.isfinite(value):
        raise _number_error(literal, "is out of range")
    return value


def _json_constant(name: str) -> float:
    raise DomainError(400, f"{DECODE_ERROR}: {name} is not a JSON number")


def check_depth(data: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """400 if `data` nests arrays/objects deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            raise DomainError(400, f"{DECODE_ERROR}: nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def query_int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """A number from the query string: ASCII digits only (no sign, no spaces, no `²` or `٣`), between
    `low` and `high`; 400 `Invalid <name>: must be an integer from <low> to <high>` otherwise."""
    raw = query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        raise DomainError(400, f"Invalid {name}: must be an integer from {low} to {high}")
    return int(raw)


def parse_body(model: type[M], raw: bytes | str | None, max_bytes: int) -> M:
    data = decode_json(raw, max_bytes)
    if not isinstance(data, dict):
        raise DomainError(400, f"{DECODE_ERROR}: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DomainError(400, describe(exc)) from None


def _field_path(loc: tuple[int | str, ...]) -> list[str]:
    """An error's location as the client wrote it: pydantic's names of union members (`list[str]`,
    `str`, `function-after[...]`) are not keys of the body."""
    return [str(part) for part in loc if not (isinstance(part, str) and _UNION_MEMBER.fullmatch(part))]


_UNION_MEMBER = re.compile(r"str|int|float|bool|bytes|none|list|dict|[a-z][a-z-]*\[.*\]")


def describe(exc: ValidationError) -> str:
    """The first validation problem as one WaGo-style sentence."""
    errors = exc.errors(include_url=False)
    error = errors[0]
    loc = _field_path(error["loc"])
    field = loc[0] if loc else "Payload"
    where = ".".join(loc) if loc else "Payload"
    kind = error["type"]
    empty = kind == "string_too_short" or (kind == "too_short" and not error.get("input"))
    if kind == "missing" or (empty and len(loc) == 1):  # a list with too few items is Invalid, not Missing
        return f"Missing {field} in Payload"
    if kind == UNPARSEABLE_ADDRESS:
        return could_not_parse(next((part for part in reversed(loc) if not part.isdigit()), field))
    if kind in _TYPE_WORDS or kind.endswith("_type"):
        # A field that takes one of several types (`Subscribe`: a list or a comma string) fails once per
        # type at the same place: name them all.
        words = [_TYPE_WORDS.get(e["type"], e["type"].removesuffix("_type")) for e in errors
                 if _field_path(e["loc"]) == loc and (e["type"] in _TYPE_WORDS or e["type"].endswith("_type"))]
        return f"{DECODE_ERROR}: {where} must be {' or '.join(dict.fromkeys(words))}"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    return f"Invalid {where} in Payload: {message}"
