from __future__ import annotations

from typing import Any

import botocore.session
import pynamodb.connection.base as pynamodb_connection

from chalicelib.core.settings import get_settings

_shared_loader = botocore.session.get_session().get_component("data_loader")


def _session_with_shared_loader() -> botocore.session.Session:
    """A botocore session whose service-model loader is shared process-wide.

    pynamodb opens one botocore session per model and thread; each new session re-reads and
    re-parses botocore's JSON service files (~0.2 s per model, i.e. ~1 s of Lambda cold start for
    five tables). Sharing the loader parses them once. Credentials and config stay per session.
    """
    session = botocore.session.get_session()
    session.register_component("data_loader", _shared_loader)
    return session


pynamodb_connection.get_session = _session_with_shared_loader


def table_meta(table_name: str, **extra: Any) -> Any:
    """A pynamodb Meta for one table: on-demand billing, region from settings.

    The endpoint is not set here: botocore reads AWS_ENDPOINT_URL (moto, LocalStack) by itself.
    """
    attrs = {"table_name": table_name, "region": get_settings().region, "billing_mode": "PAY_PER_REQUEST"}
    attrs.update(extra)
    return type("Meta", (), attrs)


def condition_failed(exc: Exception) -> bool:
    """True when a pynamodb write failed only because its condition did not hold
    (DynamoDB's `ConditionalCheckFailedException`), not for throttling or any other error."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"
