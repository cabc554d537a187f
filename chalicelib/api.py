"""The REST API as one unit: its areas (one router each), installed on the Chalice app, and its OpenAPI document.

`app.py` installs it in every process but the fan-out function's, which serves SQS batches only and
so never loads the routes, their request models or the command bus.

Two ways to install (bench/cold_start.py measures both functions' imports):
- **Whole** (`install_api`): every area's module is imported and its routes registered at import.
  Local runs, tests, and Chalice's packaging (which reads the route table) use it.
- **On demand** (`Gateway` with `install_api_on_demand`), in Lambda when the package holds the route
  index (`ROUTE_INDEX`, written by infra/wago_infra/package.py from `route_index()`, so it cannot
  disagree with the routers): at import, only what every request needs (routing, auth, settings,
  the table models) and the 404 answers, which the index alone gives. An area's module, with its
  request models, is imported on the first request for one of its paths, whatever the method; the
  path's 405 route follows it. A cold start for `GET /session/status` loads the Session area and not
  the other twelve.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import Any

from chalice import Chalice

from chalicelib import envelope
from chalicelib.core.observability import logger
from chalicelib.core.settings import Settings, get_settings
from chalicelib.routing import (
    Auth,
    Call,
    Router,
    RouteSpec,
    fallback_names,
    install,
    install_method_not_allowed,
    install_unavailable,
    install_unknown_route,
)

# Every area of the API, as "module:attribute" of its Router, imported only when installed.
AREAS = (
    "chalicelib.routes.server:router",
    "chalicelib.routes.admin_sessions:router",
    "chalicelib.routes.session:router",
    "chalicelib.routes.send:router",
    "chalicelib.routes.messaging:router",
    "chalicelib.routes.message_ops:router",
    "chalicelib.routes.webhook:router",
    "chalicelib.api:docs",
    "chalicelib.routes.calls:router",
    "chalicelib.routes.users:router",
    "chalicelib.routes.groups:router",
    "chalicelib.routes.web:console_router",  # /console (static pages)
    "chalicelib.routes.web:docs_router",  # /docs (Swagger UI)
)
SIMULATOR = "chalicelib.routes.sim:router"  # the sim driver's phone controls, served only with that driver
ROUTE_INDEX = Path(__file__).resolve().parent / "routes" / "index.json"  # in the Lambda package only

docs = Router(__name__, tag="Docs")


@docs.route("GET", "/openapi.json", auth=Auth.NONE, enveloped=False, summary="This OpenAPI 3.1 document.")
def openapi_document(call: Call) -> dict:
    return openapi()


@functools.lru_cache(maxsize=1)
def openapi() -> dict:
    """The OpenAPI document of the routes this process serves (`routers(get_settings())`), built once, on
    first use; it imports every area."""
    from chalicelib.openapi import build_document

    return build_document([spec for router in routers(get_settings()) for spec in router.specs])


def area(name: str) -> Router:
    """The Router of an area, "module:attribute" (AREAS), importing its module."""
    module, _, attribute = name.partition(":")
    router = getattr(importlib.import_module(module), attribute)
    if not isinstance(router, Router):
        raise TypeError(f"{name} is not a Router")
    return router


def unavailable_message(driver: str) -> str:
    """What /sim/* answers when the gateway runs another driver."""
    return (f"Not Found: the simulator controls (/sim/*) exist only with WHATSAPP_DRIVER=sim; this gateway runs "
            f"the {driver} driver")


def served_areas(settings: Settings) -> tuple[str, ...]:
    """The areas this process serves: the simulator's phone controls only while the sim driver runs."""
    return (*AREAS, SIMULATOR) if settings.whatsapp_driver == "sim" else AREAS


def routers(settings: Settings) -> list[Router]:
    """The routers this process serves (`served_areas`), imported."""
    return [area(name) for name in served_areas(settings)]


def install_api(app: Chalice, settings: Settings) -> tuple[list[Router], list[RouteSpec]]:
    """Install every router of `routers(settings)` on `app`; returns (routers, route specs). Without the
    sim driver, the simulator's paths answer 404 with a message saying why, rather than a bare 404."""
    installed = routers(settings)
    specs = install(app, installed)
    if settings.whatsapp_driver != "sim":
        install_unavailable(app, [spec.path for spec in area(SIMULATOR).specs], 404,
                            unavailable_message(settings.whatsapp_driver))
    return installed, specs


def route_index() -> dict[str, dict[str, str]]:
    """{path: {method: area}} for every route of every area, the simulator's included (the index
    `install_api_on_demand` reads). Imports every area."""
    index: dict[str, dict[str, str]] = {}
    for name in (*AREAS, SIMULATOR):
        for spec in area(name).specs:
            index.setdefault(spec.path, {})[spec.method] = name
    return {path: dict(sorted(methods.items())) for path, methods in sorted(index.items())}


def load_route_index(path: Path = ROUTE_INDEX) -> dict[str, dict[str, str]] | None:
    """The route index the package ships, or None where there is none (the source tree)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


class Gateway(Chalice):
    """Chalice, which can install an area on the first request for one of its paths.

    Chalice looks the route up (`requestContext.resourcePath` and `httpMethod` of API Gateway's proxy
    event) before any middleware runs, so the area is installed here, before that lookup. An area that
    fails to import answers that request with a logged 500 envelope (and is tried again on the next).
    """

    on_demand: OnDemandRoutes | None = None

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        if self.on_demand is not None and isinstance(event, dict) and isinstance(event.get("requestContext"), dict):
            path = event["requestContext"].get("resourcePath")
            try:
                self.on_demand.load(path)
            except Exception:
                logger.exception("could not install the routes of a path", extra={"path": str(path)[:200]})
                return envelope.failure(500, "internal server error").to_dict(self.api.binary_types)
        return super().__call__(event, context)


class OnDemandRoutes:
    """The areas of a route index, each installed on the app the first time one of its paths is asked for.

    On a path's first request: every area serving it (in AREAS order), then its 405 route for the other
    methods, so the path's routes are registered in the order the whole install registers them.
    """

    def __init__(self, app: Chalice, index: dict[str, dict[str, str]], areas: tuple[str, ...]):
        self.app = app
        self.order = [name for name in (*AREAS, SIMULATOR) if name in areas]
        self.paths = {path: by_method for path, by_method in index.items()
                      if any(name in areas for name in by_method.values())}
        self.fallback_names = fallback_names({path: set(by_method) for path, by_method in self.paths.items()})
        self.installed: list[str] = []
        self.ready: set[str] = set()

    def load(self, path: Any) -> None:
        """Make `path` (a route template, e.g. "/docs/{asset}") ready: a path of no served area is left
        to Chalice and the fallbacks."""
        if not isinstance(path, str) or path in self.ready or path not in self.paths:
            return
        serving = set(self.paths[path].values())
        for name in self.order:
            if name in serving and name not in self.installed:
                self.app.register_blueprint(area(name).blueprint)
                self.installed.append(name)
        install_method_not_allowed(self.app, path, set(self.paths[path]), self.fallback_names[path])
        self.ready.add(path)


def install_api_on_demand(app: Gateway, settings: Settings, index: dict[str, dict[str, str]]) -> None:
    """Install from `index` (`route_index()`) what every request needs: the 404 for an unknown route and
    the simulator's 404 where its driver does not run. Each path's area and 405 route are installed on
    its first request (`Gateway`)."""
    install_unknown_route(app)
    if settings.whatsapp_driver != "sim":
        install_unavailable(app, [path for path, by_method in index.items() if SIMULATOR in by_method.values()],
                            404, unavailable_message(settings.whatsapp_driver))
    app.on_demand = OnDemandRoutes(app, index, served_areas(settings))
