from __future__ import annotations

from typing import Any

from pynamodb.models import Model

from chalicelib.core import aws  # also: pynamodb's sessions share one botocore loader
from chalicelib.core.settings import get_settings


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


def cancelled_by_condition(exc: Exception, index: int) -> bool:
    """True when a cancelled TransactWriteItems (pynamodb's TransactWriteError) names item `index` (0-based,
    in the order the transaction wrote them) as failing its condition: DynamoDB's CancellationReasons
    give one reason per item, in order, `ConditionalCheckFailed` for that one. False for any other
    reason (throttling, a conflicting transaction, validation) and for any other exception."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return index < len(reasons) and getattr(reasons[index], "code", None) == "ConditionalCheckFailed"


#: Rounds of BatchGetItem for keys DynamoDB left unprocessed (throttling) before the rest is given up.
BATCH_GET_ROUNDS = 4


def _key_schema(model: type[Model]) -> tuple[str, Any, str | None, Any]:
    """(hash key name, its attribute, range key name or None, its attribute or None) of a model."""
    hash_attr = getattr(model, "_hash_key_attribute")()  # noqa: B009 - pynamodb types it untyped
    range_attr = getattr(model, "_range_key_attribute")()  # noqa: B009 - (mypy: a call of an untyped def)
    return str(model._hash_keyname), hash_attr, model._range_keyname, range_attr


def batch_get(*groups: tuple[type[Model], list[Any]]) -> list[list[Any]]:
    """Items of several tables in ONE BatchGetItem (consistent reads), where pynamodb's batch_get reads
    one model at a time. Each group is (model class, keys): a hash key value, or a (hash, range) tuple.
    Returns, per group, the items found (missing ones are left out; <= 100 keys in all, DynamoDB's limit).
    Keys DynamoDB leaves unprocessed are asked again, up to BATCH_GET_ROUNDS calls; then the call raises
    RuntimeError, so no caller mistakes an unread item for a missing one.
    """
    request: dict[str, dict[str, Any]] = {}
    wanted: list[set[tuple[Any, Any]]] = []
    for model, keys in groups:
        hash_name, hash_attr, range_name, range_attr = _key_schema(model)
        entry = request.setdefault(model.Meta.table_name, {"Keys": [], "ConsistentRead": True})
        pairs = {tuple(key) if range_attr is not None else (key, None) for key in keys}
        wanted.append(pairs)
        for hash_value, range_value in sorted(pairs, key=repr):
            item = {hash_name: {hash_attr.attr_type: hash_attr.serialize(hash_value)}}
            if range_name is not None:
                item[range_name] = {range_attr.attr_type: range_attr.serialize(range_value)}
            if item not in entry["Keys"]:
                entry["Keys"].append(item)
    request = {table: entry for table, entry in request.items() if entry["Keys"]}
    raw: dict[str, list[dict[str, Any]]] = {}
    client = aws.client("dynamodb")
    for _ in range(BATCH_GET_ROUNDS):
        if not request:
            break
        answer = client.batch_get_item(RequestItems=request)
        for table, items in answer.get("Responses", {}).items():
            raw.setdefault(table, []).extend(items)
        request = answer.get("UnprocessedKeys") or {}
    if request:
        raise RuntimeError("BatchGetItem left keys unprocessed (throttled)")
    return [[model.from_raw_data(item) for item in raw.get(model.Meta.table_name, []) if _raw_key(model, item) in pairs]
            for (model, _), pairs in zip(groups, wanted, strict=True)]


def _raw_key(model: type[Model], item: dict[str, Any]) -> tuple[Any, Any]:
    hash_name, hash_attr, range_name, range_attr = _key_schema(model)
    raw_hash = item.get(hash_name, {}).get(hash_attr.attr_type)
    hash_value = hash_attr.deserialize(raw_hash) if raw_hash is not None else None
    if range_name is None:
        return (hash_value, None)
    raw_range = item.get(range_name, {}).get(range_attr.attr_type)
    return (hash_value, range_attr.deserialize(raw_range) if raw_range is not None else None)
