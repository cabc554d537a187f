"""The REST API as one unit: every area's router, installed on the Chalice app, and its OpenAPI document.

`app.py` installs it in every process but the fan-out function's, which serves SQS batches only and
so never loads the routes, their request models or the command bus (bench/cold_start.py measures
both functions' imports).
"""

from __future__ import annotations

import functools

from chalice import Chalice

from chalicelib.core.settings import Settings
from chalicelib.routes import admin_sessions, message_ops, messaging, send, server, session, webhook
from chalicelib.routes import calls as call_routes
from chalicelib.routes import groups as group_routes
from chalicelib.routes import sim as sim_routes
from chalicelib.routes import users as user_routes
from chalicelib.routes import web as web_routes
from chalicelib.routing import Auth, Call, Router, RouteSpec, install, install_unavailable

docs = Router(__name__, tag="Docs")
_installed: list[RouteSpec] = []


@docs.route("GET", "/openapi.json", auth=Auth.NONE, enveloped=False, summary="This OpenAPI 3.1 document.")
def openapi_document(call: Call) -> dict:
    return openapi()


@functools.lru_cache(maxsize=1)
def openapi() -> dict:
    """The OpenAPI document of the installed routes, built once, on first use."""
    from chalicelib.openapi import build_document

    return build_document(_installed)


def routers(settings: Settings) -> list[Router]:
    """The routers this process serves: the simulator's phone controls only while the sim driver runs."""
    found = [server.router, admin_sessions.router, session.router, send.router, messaging.router,
             message_ops.router, webhook.router, docs, call_routes.router, user_routes.router, group_routes.router,
             web_routes.console_router, web_routes.docs_router]  # /console and /docs (static pages)
    if settings.whatsapp_driver == "sim":
        found.append(sim_routes.router)
    return found


def install_api(app: Chalice, settings: Settings) -> tuple[list[Router], list[RouteSpec]]:
    """Install every router of `routers(settings)` on `app`; returns (routers, route specs). Without the
    sim driver, the simulator's paths answer 404 with a message saying why, rather than a bare 404."""
    installed = routers(settings)
    _installed[:] = install(app, installed)
    if settings.whatsapp_driver != "sim":
        install_unavailable(app, sim_routes.router.specs, 404, sim_routes.unavailable_message(settings.whatsapp_driver))
    return installed, list(_installed)
