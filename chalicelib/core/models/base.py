from __future__ import annotations

from chalicelib.core import aws  # noqa: F401 - pynamodb's sessions share one botocore loader
from chalicelib.core.settings import get_settings


def table_meta(table_name: str, **extra):
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
