"""The Chalice app: WaGo's REST API and the webhook fan-out. Routes live in chalicelib/routes/.

Both Lambda functions import this module, so it builds only what its function needs: the API's
routes (chalicelib/api.py) in every process but the fan-out function's, which Lambda's reserved
`_HANDLER` names. In the API function, each area of routes is imported on its first request when
the package holds the route index (chalicelib/api.py, "On demand"); elsewhere all are installed at
import. The OpenAPI document is built on its first request, and the fan-out's modules (Powertools
batch, httpx) are imported on the first events batch (bench/cold_start.py measures both).
"""

from __future__ import annotations

import os

from chalice import Chalice

from chalicelib.core.observability import log_api_request
from chalicelib.core.settings import get_settings

settings = get_settings()
# Lambda's reserved _HANDLER says which function this process is: the fan-out reads no admin token
# (its role may not read the secret) and serves no HTTP route.
FANOUT = os.environ.get("_HANDLER", "").endswith(".deliver_events")
IN_LAMBDA = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not os.environ.get("AWS_CHALICE_CLI_MODE")
if IN_LAMBDA:
    # In Lambda, refuse to start on an unusable configuration (e.g. no admin token outside local).
    settings.validate_runnable("fanout" if FANOUT else "api")

app: Chalice
if FANOUT:
    app = Chalice(app_name="wago-gateway")
else:
    from chalicelib import api

    app = gateway = api.Gateway(app_name="wago-gateway")
app.api.binary_types = []  # bodies are JSON (or form-encoded JSON); never base64 them
app.register_middleware(log_api_request, "http")

if not FANOUT:
    openapi = api.openapi  # the document, for tests and tools
    route_index = api.load_route_index() if IN_LAMBDA else None
    if route_index is not None:
        api.install_api_on_demand(gateway, settings, route_index)
    else:
        ROUTERS, ROUTES = api.install_api(app, settings)


@app.on_sqs_message(queue=settings.events_queue_name, batch_size=10, name="deliver_events")
def deliver_events(event):
    # Chalice wraps the Lambda event; Powertools wants the raw dict. (app.lambda_context is set for
    # HTTP requests only; an event source's context travels on the event object.)
    # The event source mapping must enable ReportBatchItemFailures (FunctionResponseTypes).
    from chalicelib.webhooks.fanout import handle_events

    return handle_events(event.to_dict(), event.context)
