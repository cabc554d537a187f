"""API overhead: authenticated reads through the app vs a bare pynamodb GetItem.

Everything runs against one moto server on 127.0.0.1, measured in the same run:
  baseline       pynamodb SessionModel.get(token) (the one DynamoDB read the routes need)
  lambda         GET /webhook: the Chalice app invoked with an API Gateway event, in process (what Lambda runs)
  http           the same behind the local API server, over HTTP with keep-alive
  status-lambda  GET /session/status of a connected session (owned by a live host), in process
  status-http    the same over HTTP
Prints p50/p95 in milliseconds, the ratio of each p50 to the baseline's, and the AWS calls per
request of the in-process paths (counted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import free_port, percentile, stdout_to_devnull  # noqa: E402 - bench/ is on sys.path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))




def measure(fn, rounds: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    os.environ.update(STAGE="local", AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", WAGO_ACCESS_LOG="0")

    import httpx

    from chalicelib.core.models import HostModel, SessionModel
    from chalicelib.sessions import create_session
    from local_gateway import provision
    from local_gateway.aws_calls import count_aws_calls

    provision.ensure_all()
    create_session("bench", "bench-token", "Chrome")
    # A connected session on a live (simulated) host: its heartbeat stays within the lease for the run.
    HostModel("bench-host", command_queue_url="http://unused", capacity=10, load=1,
              heartbeat_at=time.time() + 3600, started_at=time.time()).save()
    SessionModel("bench-token").update(actions=[SessionModel.owner_host.set("bench-host"),
                                                SessionModel.connected.set(True), SessionModel.logged_in.set(True),
                                                SessionModel.jid.set("15550001111:1@s.whatsapp.net")])

    from app import app
    from local_gateway.poller import LambdaContext

    event = {
        "resource": "/webhook", "path": "/webhook", "httpMethod": "GET",
        "headers": {"token": "bench-token"}, "multiValueHeaders": {"token": ["bench-token"]},
        "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/webhook", "httpMethod": "GET", "path": "/api/webhook", "stage": "api",
                           "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}},
    }
    context = LambdaContext("api_handler")
    status_event = {**event, "resource": "/session/status", "path": "/session/status",
                    "requestContext": {**event["requestContext"], "resourcePath": "/session/status",
                                       "path": "/api/session/status"}}

    def lambda_call():
        response = app(event, context)
        assert response["statusCode"] == 200, response

    def status_lambda_call():
        response = app(status_event, context)
        assert response["statusCode"] == 200 and '"Connected": true' in response["body"], response

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "local_gateway.api_server", "--port", str(port)],
                              cwd=PROJECT_DIR, env=dict(os.environ), stdout=subprocess.DEVNULL)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"token": "bench-token"})
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/server/ok")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        def http_call():
            assert client.get("/webhook").status_code == 200

        def status_http_call():
            response = client.get("/session/status")
            assert response.status_code == 200 and response.json()["data"]["Connected"] is True

        paths = {
            "baseline": lambda: SessionModel.get("bench-token", consistent_read=True),
            "lambda": lambda_call,
            "http": http_call,
            "status-lambda": status_lambda_call,
            "status-http": status_http_call,
        }
        calls_per_request = {}
        results: dict[str, list[float]] = {name: [] for name in paths}
        with stdout_to_devnull():  # the handler's request log and EMF lines, as Lambda writes them
            for name in ("baseline", "lambda", "status-lambda"):
                paths[name]()  # warm (clients, the host row cache)
                with count_aws_calls() as calls:
                    for _ in range(20):
                        paths[name]()
                calls_per_request[name] = {f"{svc}.{op}": n / 20 for (svc, op), n in calls.items()}
            # Interleave the three in rounds so machine noise hits each alike.
            for _ in range(3):
                for name, fn in paths.items():
                    results[name].extend(measure(fn, args.rounds // 3))
    finally:
        server.terminate()
        server.wait(timeout=10)
        moto.stop()

    base_p50 = statistics.median(results["baseline"])
    print(f"GET /webhook and GET /session/status (connected) vs bare pynamodb GetItem, moto server on loopback, "
          f"{args.rounds} requests each")
    print(f"{'path':<14} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10}  AWS calls per request")
    for name, samples in results.items():
        p50 = statistics.median(samples)
        print(f"{name:<14} {p50:8.2f} {percentile(samples, 0.95):8.2f} {p50 / base_p50:9.2f}x  "
              f"{calls_per_request.get(name, '(as its in-process path)')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
