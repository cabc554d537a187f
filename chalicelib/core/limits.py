"""AWS payload caps on the deployed request path, and the body limits they impose on WaGo's routes.

Sources (AWS service quotas):

- API Gateway REST API: "Payload size: 10 MB" per request. Beyond it API Gateway answers itself
  (REQUEST_TOO_LARGE, mapped to WaGo's 413 envelope by the stack).
- Lambda: "Invocation payload (request and response): 6 MB each for request and response
  (synchronous)". Lambda counts the serialized event and the serialized response, and enforces
  6 MiB = 6,291,456 bytes.

With the proxy integration the request body travels inside the Lambda event as a JSON string
(each `"` and `\\` costs one more byte, a control character up to six), beside the headers (twice:
`headers` and `multiValueHeaders`, each at most 10,240 bytes by API Gateway's header quota), the
query string (twice) and the request context. The response body travels the same way in the
function's response. So Lambda's 6 MiB, not API Gateway's 10 MB, binds in both directions, and a
request between the two never reaches the function (API Gateway answers 502).

A media file sent as a data URL is base64 (4 bytes per 3) inside that body: the largest one that
fits is `DATA_URL_MAX_DECODED_BYTES` (about 4.45 MiB). Larger files go through `POST /media/upload`
(a presigned S3 POST, up to MEDIA_MAX_BYTES) and the send carries the returned `MediaKey`.

The deployed stages (`dev`, `prod`) enforce these limits in the app too (settings
`lambda_payload_limits`), so a request that would fail in AWS fails the same way when the app runs
locally with those stage settings.
"""

from __future__ import annotations

import json

API_GATEWAY_PAYLOAD_BYTES = 10 * 1024 * 1024
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024

# What the proxy event holds besides the body: headers and multiValueHeaders (2 x 10,240 bytes at
# most), the query string twice, path parameters, the request context (~1.5 KB) and the JSON keys.
EVENT_OVERHEAD_BYTES = 48 * 1024
# What the function's response holds besides the body: statusCode, headers twice, keys.
RESPONSE_OVERHEAD_BYTES = 16 * 1024
# A data-URL send's other fields: Phone, Caption (4,096 characters, up to 4 bytes each), FileName,
# Mimetype, Id, the keys, and the data URL's own `data:<type>;base64,` prefix.
DATA_URL_SEND_FIELDS_BYTES = 32 * 1024

REQUEST_BODY_MAX_BYTES = LAMBDA_SYNC_PAYLOAD_BYTES - EVENT_OVERHEAD_BYTES  # as escaped into the event
RESPONSE_BODY_MAX_BYTES = LAMBDA_SYNC_PAYLOAD_BYTES - RESPONSE_OVERHEAD_BYTES  # as escaped into the response
DATA_URL_MAX_DECODED_BYTES = (REQUEST_BODY_MAX_BYTES - DATA_URL_SEND_FIELDS_BYTES) // 4 * 3

UPLOAD_HINT = "send larger files with POST /media/upload, then pass its MediaKey instead of the data URL"


def escaped_size(body: str | bytes | None) -> int:
    """Bytes `body` takes as a JSON string value (quotes excluded), as in Lambda's event or response.

    Bytes that are not UTF-8 are counted as API Gateway passes them (base64 would be larger still,
    but the app sets no binary media types, so bodies are never base64-encoded).
    """
    if not body:
        return 0
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2
