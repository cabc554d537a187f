"""WaGo's response envelope: `{"code","data","success":true}` and `{"code","error","success":false}`."""

from __future__ import annotations

import json
from typing import Any

from chalice import Response

JSON_HEADERS = {"Content-Type": "application/json"}




def success(data: Any, status: int = 200) -> Response:
    return Response(
        body=json.dumps({"code": status, "data": data, "success": True}, default=str),
        status_code=status,
        headers=dict(JSON_HEADERS),
    )


def failure(status: int, message: str) -> Response:
    return Response(
        body=json.dumps({"code": status, "error": message, "success": False}),
        status_code=status,
        headers=dict(JSON_HEADERS),
    )
