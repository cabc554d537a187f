from __future__ import annotations

from chalicelib.settings import get_settings


def table_meta(table_name: str, **extra):
    """A pynamodb Meta for one table: on-demand billing, region from settings.

    The endpoint is not set here: botocore reads AWS_ENDPOINT_URL (moto, LocalStack) by itself.
    """
    attrs = {"table_name": table_name, "region": get_settings().region, "billing_mode": "PAY_PER_REQUEST"}
    attrs.update(extra)
    return type("Meta", (), attrs)
