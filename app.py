"""The Chalice app: WaGo's REST API and the webhook fan-out. Routes live in chalicelib/routes/.

Both Lambda functions import this module, so it builds only what every request needs: the routes.
The OpenAPI document is built on its first request, and the fan-out's modules (Powertools batch and
idempotency, httpx) are imported on the first events batch (bench/cold_start.py measures the gain).
"""

from __future__ import annotations

import functools
import os

from chalice import Chalice

from chalicelib.core.observability import log_api_request
from chalicelib.core.settings import get_settings
from chalicelib.routes import admin_sessions, message_ops, messaging, send, server, session, webhook
from chalicelib.routes import calls as call_routes
from chalicelib.routes import groups as group_routes
from chalicelib.routes import sim as sim_routes
from chalicelib.routes import users as user_routes
from chalicelib.routes import web as web_routes
from chalicelib.routing import Auth, Call, Router, install, install_unavailable

settings = get_settings()
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and not os.environ.get("AWS_CHALICE_CLI_MODE"):
    # In Lambda, refuse to start on an unusable configuration (e.g. no admin token outside local).
    # Both functions run this module; Lambda's reserved _HANDLER says which one this is (the fan-out
    # reads no admin token, and its role may not read the secret).
    fanout = os.environ.get("_HANDLER", "").endswith(".deliver_events")
    settings.validate_runnable("fanout" if fanout else "api")

app = Chalice(app_name="wago-gateway")
app.api.binary_types = []  # bodies are JSON (or form-encoded JSON); never base64 them
app.register_middleware(log_api_request, "http")

docs = Router(__name__, tag="Docs")


@docs.route("GET", "/openapi.json", auth=Auth.NONE, enveloped=False, summary="This OpenAPI 3.1 document.")
def openapi_document(call: Call) -> dict:
    return openapi()


@functools.lru_cache(maxsize=1)
def openapi() -> dict:
    """The OpenAPI document of the installed routes, built once, on first use."""
    from chalicelib.openapi import build_document

    return build_document(ROUTES)


ROUTERS = [server.router, admin_sessions.router, session.router, send.router, messaging.router, message_ops.router,
           webhook.router, docs]
ROUTERS.append(call_routes.router)
ROUTERS += [user_routes.router, group_routes.router]
ROUTERS += [web_routes.console_router, web_routes.docs_router]  # /console and /docs (static pages)
if settings.whatsapp_driver == "sim":
    ROUTERS.append(sim_routes.router)  # simulator controls exist only while the sim driver runs
ROUTES = install(app, ROUTERS)
if settings.whatsapp_driver != "sim":  # ... and say so, rather than a bare 404
    install_unavailable(app, sim_routes.router.specs, 404,
                        sim_routes.unavailable_message(settings.whatsapp_driver))


@app.on_sqs_message(queue=settings.events_queue_name, batch_size=10, name="deliver_events")
def deliver_events(event):
    # Chalice wraps the Lambda event; Powertools wants the raw dict. (app.lambda_context is set for
    # HTTP requests only; an event source's context travels on the event object.)
    # The event source mapping must enable ReportBatchItemFailures (FunctionResponseTypes).
    from chalicelib.webhooks.fanout import handle_events

    return handle_events(event.to_dict(), event.context)
