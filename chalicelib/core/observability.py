"""Powertools logger and metrics shared by the API and fan-out handlers.

Service name, namespace and log level come from POWERTOOLS_* environment variables in the cloud.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.core import redact

# Explicit arguments would override POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE: only default them.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "wago-gateway"
logger = Logger(service=SERVICE)
redact.install(logger._logger)  # no secret in any line: tokens and credentials become fingerprints
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "WaGoGateway", service=SERVICE)


def log_api_request(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice HTTP middleware: one structured line per request (WaGo's "Got API Request"), plus
    latency and status-class metrics (EMF, flushed per invocation)."""
    started = time.perf_counter()
    response = get_response(event)
    duration_ms = (time.perf_counter() - started) * 1000
    context = event.context or {}
    route = context.get("resourcePath") or event.path
    logger.info(
        "Got API Request",
        extra={"method": event.method, "route": route, "status": response.status_code,
               "duration_ms": round(duration_ms, 2), "request_id": context.get("requestId")},
    )
    metrics.add_metric(name="ApiLatency", unit=MetricUnit.Milliseconds, value=duration_ms)
    metrics.add_metric(name=f"Api{response.status_code // 100}xx", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    return response
