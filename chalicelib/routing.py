"""Thin routes: a route declares its auth, body model and response model; this module does the rest.

Each API area owns a `Router` (a Chalice Blueprint underneath). The wrapper authenticates, decodes
and validates the body, calls the handler with a `Call`, and renders WaGo's envelope, including
for every failure: a client mistake is a 4xx envelope, anything unexpected a logged 500 envelope
without internals. The declarations are also the source of the OpenAPI document.

Where Lambda's payload caps apply (settings `enforce_lambda_limits`: dev and prod), a request body
that could not reach the function in AWS is a 413 envelope and a response that could not leave it
is a 500 envelope saying so (chalicelib/core/limits.py), never Lambda's bare 502. An unknown route
answers WaGo's 404 envelope here too (API Gateway does it before the function in AWS).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Chalice, Response
from chalice.app import Request

from chalicelib import envelope
from chalicelib.auth import require_admin, require_session
from chalicelib.core import limits
from chalicelib.core.errors import DomainError
from chalicelib.core.models import SessionModel
from chalicelib.core.observability import logger
from chalicelib.core.settings import ConfigurationError, get_settings
from chalicelib.validation import WagoModel, parse_body

if TYPE_CHECKING:  # the operations are imported by the areas that send them (the bus among them), not here
    from chalicelib.core import ops

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ANY_CONTENT_TYPE = ["*/*"]  # WaGo's own curl examples send JSON as form-urlencoded


class Auth(enum.Enum):
    NONE = "none"
    SESSION = "token"
    ADMIN = "admintoken"
    ADMIN_AND_SESSION = "admintoken+token"


#: Names of the operations the running route declares; None outside a route (tools, other Lambdas).
_ROUTE_SENDS: ContextVar[frozenset[str] | None] = ContextVar("wago_route_sends", default=None)


@contextmanager
def route_sends(operations: Iterable[ops.Operation[Any, Any]]) -> Iterator[None]:
    """Within this block (a route's handler), the bus sends only `operations` (chalicelib/bus.py raises
    UndeclaredOperation for another)."""
    token = _ROUTE_SENDS.set(frozenset(op.name for op in operations))
    try:
        yield
    finally:
        _ROUTE_SENDS.reset(token)


def declared_sends() -> frozenset[str] | None:
    """Names of the operations the running route declares (`Router.route(sends=...)`); None outside a route."""
    return _ROUTE_SENDS.get()


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
    sends: tuple[ops.Operation[Any, Any], ...] = ()  # the host operations it sends (chalicelib/core/ops.py)


@dataclass
class Call:
    """What a handler gets: the request, the route's declared path (e.g. `/send/text`, path parameters
    unfilled), the authenticated session, the validated body."""

    request: Request
    params: dict[str, str]
    authenticated: SessionModel | None = None
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    path: str = ""

    @property
    def session(self) -> SessionModel:
        """The session of a route declared with `Auth.SESSION` or `Auth.ADMIN_AND_SESSION` (its `token`
        header, checked before the handler runs). RuntimeError on a route that declares no session auth."""
        if self.authenticated is None:
            raise RuntimeError("this route declares no session auth")
        return self.authenticated


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
        sends: tuple[ops.Operation[Any, Any], ...] = (),
        max_body_bytes: int | None = None,
        too_large_hint: str | None = None,
    ) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
        """Register `handler` for `method path`. `sends`: the host operations the handler may send through
        the bus (chalicelib/core/ops.py; the bus refuses any other while it runs, and OpenAPI lists them as
        `x-wago-operations`); `max_body_bytes`: this route's body limit (default MAX_BODY_BYTES);
        `too_large_hint`: appended to the 413 of a body over either limit (e.g. limits.UPLOAD_HINT)."""
        def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
            spec = RouteSpec(method, path, handler.__name__, auth, summary, self.tag, body, response, enveloped, status,
                             sends)
            self.specs.append(spec)

            def view(**params: str) -> Response:
                request = self.blueprint.current_request
                try:
                    call = Call(request=request, params=params, query=dict(request.query_params or {}), path=path)
                    call.authenticated = _authenticate(request, auth)
                    if body is not None:
                        limit = max_body_bytes or get_settings().max_body_bytes
                        try:
                            _check_request_fits(request.raw_body)
                            call.body = parse_body(body, request.raw_body, limit)
                        except DomainError as exc:
                            if exc.status == 413 and too_large_hint:
                                raise DomainError(413, f"{exc.message}; {too_large_hint}") from None
                            raise
                    with route_sends(sends):
                        result = handler(call)
                    return _fit_response(_render(result, spec), spec)
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


def _check_request_fits(raw: bytes | str | None) -> None:
    """413 for a body that could not reach the function in AWS (Lambda's 6 MB request cap, as escaped)."""
    if not get_settings().enforce_lambda_limits or raw is None or len(raw) * 6 < limits.REQUEST_BODY_MAX_BYTES:
        return  # (escaping grows a body at most six-fold: a control character becomes \u00XX)
    size = limits.escaped_size(raw)
    if size > limits.REQUEST_BODY_MAX_BYTES:
        raise DomainError(413, f"Payload too large: {size} bytes exceeds the limit of {limits.REQUEST_BODY_MAX_BYTES} "
                               f"bytes (Lambda's 6 MB request cap)")


def _fit_response(response: Response, spec: RouteSpec) -> Response:
    """The response, or a 500 envelope when its body could not leave the function in AWS (6 MB cap)."""
    body = response.body
    if (not get_settings().enforce_lambda_limits or not isinstance(body, (str, bytes))
            or len(body) * 6 < limits.RESPONSE_BODY_MAX_BYTES):
        return response
    size = limits.escaped_size(body)
    if size <= limits.RESPONSE_BODY_MAX_BYTES:
        return response
    logger.error("response too large", extra={"route": f"{spec.method} {spec.path}", "bytes": size})
    return envelope.failure(500, f"Response too large: {size} bytes exceeds the limit of "
                                 f"{limits.RESPONSE_BODY_MAX_BYTES} bytes (Lambda's 6 MB response cap)")


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
    """Register every router on the app, then `install_fallbacks` for their paths. Returns their specs."""
    specs: list[RouteSpec] = []
    for router in routers:
        app.register_blueprint(router.blueprint)
        specs.extend(router.specs)
    install_fallbacks(app, methods_by_path(specs))
    return specs


def methods_by_path(specs: list[RouteSpec]) -> dict[str, set[str]]:
    """{path: the methods routed there}."""
    by_path: dict[str, set[str]] = {}
    for spec in specs:
        by_path.setdefault(spec.path, set()).add(spec.method)
    return by_path


def install_fallbacks(app: Chalice, methods: dict[str, set[str]]) -> None:
    """`install_method_not_allowed` for every path of `methods` ({path: the methods its routes serve}),
    then `install_unknown_route`."""
    for path, name in fallback_names(methods).items():
        install_method_not_allowed(app, path, methods[path], name)
    install_unknown_route(app)


def fallback_names(methods: dict[str, set[str]]) -> dict[str, str]:
    """{path: the name of its 405 route}, one per path, the same however the routes are installed."""
    return {path: f"method_not_allowed_{index}" for index, path in enumerate(sorted(methods))}


def install_method_not_allowed(app: Chalice, path: str, served: set[str], name: str) -> None:
    """Answer `path`'s other methods (not in `served`) with a 405 envelope naming the allowed ones.

    API Gateway would otherwise answer a wrong method with its own 403 body, which no WaGo client
    understands; registering the other methods sends them to the app instead. Install it after the
    path's routes: Chalice's own 405 (a method outside HTTP_METHODS) lists them in that order.
    """
    others = [m for m in HTTP_METHODS if m not in served]
    if others:
        app.route(path, methods=others, content_types=ANY_CONTENT_TYPE, name=name)(_method_not_allowed(sorted(served)))


def install_unknown_route(app: Chalice) -> None:
    """Answer a route the app does not serve with WaGo's 404 envelope."""
    def unknown_route(request: Request, get_response: Callable[[Request], Response]) -> Response:
        # In AWS, API Gateway answers a path it has no resource for (the MISSING_AUTHENTICATION_TOKEN
        # gateway response, in WaGo's envelope); a direct invocation of the function gets the same.
        if request.context.get("resourcePath") not in app.routes:
            return envelope.failure(404, "Not Found")
        return get_response(request)

    app.register_middleware(unknown_route, "http")


def install_unavailable(app: Chalice, paths: list[str], status: int, message: str) -> None:
    """Answer every method of these paths with one envelope (routes of a feature this deployment does
    not run, e.g. the simulator controls under the neonize driver), instead of a bare 404."""
    for index, path in enumerate(sorted(set(paths))):
        def view(**_params: str) -> Response:
            return envelope.failure(status, message)

        app.route(path, methods=list(HTTP_METHODS), content_types=ANY_CONTENT_TYPE,
                  name=f"unavailable_{index}")(view)


def _method_not_allowed(allowed: list[str]) -> Callable[..., Response]:
    def view(**_params: str) -> Response:
        response = envelope.failure(405, f"Method Not Allowed: use {', '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response

    return view


NOT_FOUND_BODY = json.dumps({"code": 404, "error": "Not Found", "success": False})
