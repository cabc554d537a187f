"""Lambda events as AWS sends them, for tests that call a handler directly."""

from __future__ import annotations

import uuid


def proxy_event(method: str, path: str, *, headers: dict | None = None, body: str | None = None,
                resource: str | None = None) -> dict:
    """An API Gateway REST API proxy-integration event (version 1.0), as the `api` stage sends it."""
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "User-Agent": "wago-client",
               "Content-Type": "application/json", **(headers or {})}
    return {
        "resource": resource or path, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {
            "resourceId": "abc", "resourcePath": resource or path, "httpMethod": method, "stage": "api",
            "requestId": str(uuid.uuid4()), "path": f"/api{path}", "protocol": "HTTP/1.1",
            "accountId": "000000000000", "apiId": "abc123", "requestTimeEpoch": 1796000000000,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "wago-client"},
        },
        "body": body, "isBase64Encoded": False,
    }
