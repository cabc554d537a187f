"""Run the unpacked Lambda package as Lambda's Python runtime would: handlers called in-process.

Standard library only: it runs under the target interpreter (`python3.13 -I -S -B lambda_runner.py
--path <unzipped package> --path <runtime boto3/botocore>`), so `sys.path` holds the standard
library plus exactly the given directories, in that order (Lambda's order: /var/task, then the
runtime's own boto3/botocore), and nothing from any virtualenv.

Protocol (JSON lines): on start it imports `--module` (default `app`) and writes
`{"ready": true, "init_ms": <import time in ms>, "python": "3.13.0", "paths": [...]}` (or
`{"ready": false, "error": "<traceback>"}` and exits 1). Then, per line read from stdin,
`{"handler": "app", "event": {...}, "function": "APIHandler", "timeout_ms": 30000}` → one line
`{"result": <the handler's return value>, "ms": <duration>}` or `{"error": "<traceback>", "ms": ...}`.
`handler` names an attribute of the module (`app` for the Chalice API, `deliver_events` for the
fan-out). EOF ends it. Used by tests/artifacts and by bench/ (cold start against the zip).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
import uuid


class LambdaContext:
    """The attributes and method of Lambda's Python context object that handlers read."""

    def __init__(self, function_name: str, timeout_ms: int, memory_mb: int = 512):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/01/01/[$LATEST]local"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _write(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", action="append", default=[], help="a sys.path entry (repeatable, in order)")
    parser.add_argument("--module", default="app")
    args = parser.parse_args()
    sys.path[:0] = args.path
    # Handlers log to stdout through Powertools; this protocol owns stdout, so their lines go to stderr.
    protocol, sys.stdout = sys.stdout, sys.stderr
    started = time.perf_counter()
    try:
        module = importlib.import_module(args.module)
    except BaseException:  # noqa: BLE001 - any import failure is the answer
        sys.stdout = protocol
        _write({"ready": False, "error": traceback.format_exc()})
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    sys.stdout = protocol
    _write({"ready": True, "init_ms": round(init_ms, 1), "python": sys.version.split()[0], "paths": sys.path})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        context = LambdaContext(request.get("function", "APIHandler"), int(request.get("timeout_ms", 30_000)))
        handler = getattr(module, request.get("handler", "app"))
        started = time.perf_counter()
        sys.stdout = sys.stderr
        try:
            result = handler(request["event"], context)
            answer = {"result": result}
        except BaseException:  # noqa: BLE001 - reported to the caller, as Lambda reports an error
            answer = {"error": traceback.format_exc()}
        finally:
            sys.stdout = protocol
        answer["ms"] = round((time.perf_counter() - started) * 1000, 2)
        _write(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
