"""Powertools logger and metrics shared by the API and fan-out handlers.

Service name, namespace and log level come from POWERTOOLS_* environment variables in the cloud.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="wago-gateway")
metrics = Metrics(namespace="WaGoGateway", service="wago-gateway")
