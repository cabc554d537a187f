"""The REST API as one unit: its areas (one router each), installed on the Chalice app, and its OpenAPI document.

`app.py` installs it in every process but the fan-out function's, which serves SQS batches only and
so never loads the routes, their request models or the command bus.

Two ways to install (bench/cold_start.py measures both functions' imports):
- **Whole** (`install_api`): every area's module is imported and its routes registered at import.
  Local runs, tests, and Chalice's packaging (which reads the route table) use it.
- **On demand** (`Gateway` with `install_api_on_demand`), in Lambda when the package holds the route
  index (`ROUTE_INDEX`, written by infra/wago_infra/package.py from `route_index()`, so it cannot
  disagree with the routers): at import, only what every request needs (routing, auth, settings,
  the table models) and the 405/404 answers, which the index alone gives. An area's module, with
  its request models, is imported on the first request for one of its routes. A cold start for
  `GET /session/status` loads the Session area and not the other twelve.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import Any

from chalice import Chalice

from chalicelib.core.settings import Settings, get_settings
from chalicelib.routing import (
    Auth,
    Call,
    Router,
    RouteSpec,
    install,
    install_fallbacks,
    install_unavailable,
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
    """Chalice, which can install an area on the first request for one of its routes.

    Chalice looks the route up (`requestContext.resourcePath` and `httpMethod` of API Gateway's proxy
    event) before any middleware runs, so the area is installed here, before that lookup.
    """

    on_demand: OnDemandRoutes | None = None

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        if self.on_demand is not None and isinstance(event, dict):
            request_context = event.get("requestContext") or {}
            self.on_demand.load(request_context.get("httpMethod"), request_context.get("resourcePath"))
        return super().__call__(event, context)


class OnDemandRoutes:
    """The areas of a route index, each installed on the app the first time one of its routes is asked for."""

    def __init__(self, app: Chalice, index: dict[str, dict[str, str]], areas: tuple[str, ...]):
        self.app = app
        self.index = index
        self.areas = set(areas)
        self.installed: list[str] = []

    def load(self, method: Any, path: Any) -> None:
        """Install the area that serves `method path` unless it is installed already (or served by none:
        Chalice then answers from the fallbacks)."""
        name = self.index.get(path, {}).get(method) if isinstance(path, str) else None
        if name is None or name in self.installed or name not in self.areas:
            return
        self.app.register_blueprint(area(name).blueprint)
        self.installed.append(name)


def install_api_on_demand(app: Gateway, settings: Settings, index: dict[str, dict[str, str]]) -> None:
    """Install from `index` (`route_index()`) what every request needs: the 405 answer for each path's
    other methods, the 404 for an unknown route, and the simulator's 404 where its driver does not run.
    Each area then installs itself on its first request (`Gateway`)."""
    served = served_areas(settings)
    methods = {path: set(by_method) for path, by_method in index.items()
               if any(name in served for name in by_method.values())}
    install_fallbacks(app, methods)
    if settings.whatsapp_driver != "sim":
        install_unavailable(app, [path for path, by_method in index.items() if SIMULATOR in by_method.values()],
                            404, unavailable_message(settings.whatsapp_driver))
    app.on_demand = OnDemandRoutes(app, index, served)

