"""OpenAPI 3.1 document built from the routes' own declarations and pydantic models. A route that sends
host operations lists their registry names (chalicelib/core/ops.py) under `x-wago-operations`."""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from chalicelib.routing import Auth, RouteSpec
from chalicelib.validation import WagoModel

REF = "#/components/schemas/{model}"
_SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    Auth.NONE: [],
    Auth.SESSION: [{"token": []}],
    Auth.ADMIN: [{"admintoken": []}],
    Auth.ADMIN_AND_SESSION: [{"admintoken": [], "token": []}],
}


def _models(specs: list[RouteSpec]) -> list[type[WagoModel]]:
    found: dict[str, type[WagoModel]] = {}
    for spec in specs:
        for candidate in (spec.body, spec.response, *get_args(spec.response)):
            if isinstance(candidate, type) and issubclass(candidate, WagoModel):
                found[candidate.__name__] = candidate
    return list(found.values())


def _schema_ref(annotation: Any) -> dict[str, Any]:
    if annotation is None:
        return {}
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return {"type": "array", "items": _schema_ref(item)}
    if isinstance(annotation, type) and issubclass(annotation, WagoModel):
        return {"$ref": REF.format(model=annotation.__name__)}
    return TypeAdapter(annotation).json_schema()


def _envelope(data_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code", "data", "success"],
        "properties": {"code": {"type": "integer"}, "data": data_schema, "success": {"const": True}},
    }


def build_document(specs: list[RouteSpec], title: str = "WaGo-compatible WhatsApp gateway") -> dict[str, Any]:
    models = _models(specs)
    _, definitions = models_json_schema(
        [(m, "validation") for m in models], by_alias=True, ref_template=REF
    )
    schemas = dict(definitions.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "required": ["code", "error", "success"],
        "properties": {"code": {"type": "integer"}, "error": {"type": "string"}, "success": {"const": False}},
    }
    error_response = {
        "description": "WaGo error envelope",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        data_schema = _schema_ref(spec.response)
        ok_schema = _envelope(data_schema) if spec.enveloped else (data_schema or {"type": "object"})
        operation: dict[str, Any] = {
            "operationId": spec.name,
            "summary": spec.summary,
            "tags": [spec.tag],
            "security": _SECURITY[spec.auth],
            "responses": {
                str(spec.status): {"description": "Success", "content": {"application/json": {"schema": ok_schema}}},
                "4XX": error_response,
                "5XX": error_response,
            },
        }
        if spec.sends:  # the host operations behind the route (chalicelib/core/ops.py), by their wire names
            operation["x-wago-operations"] = [op.name for op in spec.sends]
        params = re.findall(r"{(\w+)}", spec.path)
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
            ]
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "description": "JSON; keys are matched in any letter case.",
                "content": {"application/json": {"schema": _schema_ref(spec.body)}},
            }
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": "WaGo's REST API (paths, headers, envelope, field names) on AWS serverless.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "token"},
                "admintoken": {"type": "apiKey", "in": "header", "name": "admintoken"},
            },
        },
    }
