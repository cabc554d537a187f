"""Thin routes: a route declares its auth, body model and response model; this module does the rest.

Each API area owns a `Router` (a Chalice Blueprint underneath). The wrapper authenticates, decodes
and validates the body, calls the handler with a `Call`, and renders WaGo's envelope, including
for every failure: a client mistake is a 4xx envelope, anything unexpected a logged 500 envelope
without internals. The declarations are also the source of the OpenAPI document.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from chalice import Blueprint, Chalice, Response
from chalice.app import Request

from chalicelib import envelope
from chalicelib.auth import require_admin, require_session
from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger
from chalicelib.core.settings import ConfigurationError, get_settings
from chalicelib.validation import WagoModel, parse_body

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ANY_CONTENT_TYPE = ["*/*"]  # WaGo's own curl examples send JSON as form-urlencoded


class Auth(enum.Enum):
    NONE = "none"
    SESSION = "token"
    ADMIN = "admintoken"
    ADMIN_AND_SESSION = "admintoken+token"


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    name: str
    auth: Auth
    summary: str
    tag: str
    body: type[WagoModel] | None = None
    response: Any = None  # a WagoModel type, a list[...] of one, or None for free-form
    enveloped: bool = True
    status: int = 200


@dataclass
class Call:
    """What a handler gets: the request, the authenticated session, the validated body."""

    request: Request
    params: dict[str, str]
    session: SessionModel | None = None
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)


class Router:
    def __init__(self, import_name: str, tag: str):
        self.blueprint = Blueprint(import_name)
        self.tag = tag
        self.specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        auth: Auth,
        summary: str,
        body: type[WagoModel] | None = None,
        response: Any = None,
        enveloped: bool = True,
        status: int = 200,
        max_body_bytes: int | None = None,
    ) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
        def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
            spec = RouteSpec(method, path, handler.__name__, auth, summary, self.tag, body, response, enveloped, status)
            self.specs.append(spec)

            def view(**params: str) -> Response:
                request = self.blueprint.current_request
                try:
                    call = Call(request=request, params=params, query=dict(request.query_params or {}))
                    call.session = _authenticate(request, auth)
                    if body is not None:
                        limit = max_body_bytes or get_settings().max_body_bytes
                        call.body = parse_body(body, request.raw_body, limit)
                    return _render(handler(call), spec)
                except DomainError as exc:
                    return envelope.failure(exc.status, exc.message)
                except ConfigurationError as exc:
                    logger.error("configuration error", extra={"error": str(exc)})
                    return envelope.failure(500, f"server misconfigured: {exc}")
                except Exception:
                    logger.exception("unhandled error", extra={"route": f"{method} {path}"})
                    return envelope.failure(500, "internal server error")

            view.__name__ = handler.__name__
            self.blueprint.route(path, methods=[method], content_types=ANY_CONTENT_TYPE)(view)
            return handler

        return register


def _authenticate(request: Request, auth: Auth) -> SessionModel | None:
    if auth in (Auth.ADMIN, Auth.ADMIN_AND_SESSION):
        require_admin(request)
    if auth in (Auth.SESSION, Auth.ADMIN_AND_SESSION):
        return require_session(request)
    return None


def _render(result: Any, spec: RouteSpec) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, WagoModel):
        result = result.dump()
    elif isinstance(result, list):
        result = [item.dump() if isinstance(item, WagoModel) else item for item in result]
    if spec.enveloped:
        return envelope.success(result, spec.status)
    return Response(body=json.dumps(result), status_code=spec.status, headers=dict(envelope.JSON_HEADERS))


def install(app: Chalice, routers: list[Router]) -> list[RouteSpec]:
    """Register every router on the app, then answer unsupported methods with a 405 envelope.

    API Gateway would otherwise answer a wrong method with its own 403 body, which no WaGo client
    understands; registering the other methods sends them to the app instead.
    """
    specs: list[RouteSpec] = []
    for router in routers:
        app.register_blueprint(router.blueprint)
        specs.extend(router.specs)
    by_path: dict[str, set[str]] = {}
    for spec in specs:
        by_path.setdefault(spec.path, set()).add(spec.method)
    for index, (path, methods) in enumerate(sorted(by_path.items())):
        others = [m for m in HTTP_METHODS if m not in methods]
        if others:
            app.route(path, methods=others, content_types=ANY_CONTENT_TYPE, name=f"method_not_allowed_{index}")(
                _method_not_allowed(sorted(methods))
            )
    return specs


def _method_not_allowed(allowed: list[str]) -> Callable[..., Response]:
    def view(**_params: str) -> Response:
        response = envelope.failure(405, f"Method Not Allowed: use {', '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response

    return view


NOT_FOUND_BODY = json.dumps({"code": 404, "error": "Not Found", "success": False})
