"""Send path: POST /send/text end to end (HTTP -> API -> SQS FIFO -> host -> sim -> reply item -> HTTP)
against the floor of the same AWS calls measured in the same run (a bare SQS FIFO send + long-poll
receive + DynamoDB put + consistent get), and sends per second for one session and for one host.
Also the simulator's phone side, POST /sim/message (a `sim.message` operation run on any live sim host),
against /send/text in the same run.

Runs `python -m local_gateway` (moto server, API, one sim session host, poller) on free 127.0.0.1 ports.
Prints medians and p95 in milliseconds and the ratio of the send's p50 to the floor's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import free_port, percentile  # noqa: E402 - bench/ is on sys.path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ADMIN = {"admintoken": "qwert"}




def start_gateway(api_port: int, aws_port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(STAGE="local", WHATSAPP_DRIVER="sim", WAGO_ACCESS_LOG="0", LOG_LEVEL="WARNING",
               POWERTOOLS_LOG_LEVEL="WARNING")
    process = subprocess.Popen([sys.executable, "-m", "local_gateway", "--api-port", str(api_port),
                                "--aws-port", str(aws_port)], cwd=PROJECT_DIR, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{api_port}/server/ok", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("bench: the gateway did not start")


def floor_samples(endpoint: str, rounds: int) -> list[float]:
    """What one command needs at least: SQS FIFO send + long-poll receive + delete, DynamoDB put + get."""
    import boto3

    credentials = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
    sqs = boto3.client("sqs", endpoint_url=endpoint, **credentials)
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, **credentials)
    url = sqs.create_queue(QueueName=f"bench-floor-{uuid.uuid4().hex[:8]}.fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    table = "wago-local-replies"
    samples = []
    for i in range(rounds + 5):
        key = uuid.uuid4().hex
        started = time.perf_counter()
        sqs.send_message(QueueUrl=url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId=key)
        message = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=1)["Messages"][0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        ddb.put_item(TableName=table, Item={"command_id": {"S": key}, "body": {"S": "{}"}})
        ddb.get_item(TableName=table, Key={"command_id": {"S": key}}, ConsistentRead=True)
        if i >= 5:
            samples.append((time.perf_counter() - started) * 1000)
    sqs.delete_queue(QueueUrl=url)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=8, help="sessions sending at once for the host figure")
    parser.add_argument("--per-session", type=int, default=25)
    args = parser.parse_args()

    import httpx

    api_port, aws_port = free_port(), free_port()
    gateway = start_gateway(api_port, aws_port)
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
        tokens = ["bench-to"] + [f"bench-{i}" for i in range(args.sessions)]
        for i, token in enumerate(tokens):
            api.post("/session/init", headers=ADMIN, json={"Name": token, "Token": token, "Os": "Chrome"})
            api.post("/session/connect", headers={"token": token}, json={"Subscribe": ["Message"]})
            scanned = api.post("/sim/scan", headers=ADMIN, json={"Token": token, "Phone": f"1555900{i:04d}"})
            assert scanned.status_code == 200, scanned.text
        sender = tokens[1]

        def send(client: httpx.Client, token: str) -> float:
            started = time.perf_counter()
            response = client.post("/send/text", headers={"token": token},
                                   json={"Phone": "15559000000", "Body": "bench"})
            assert response.status_code == 200, response.text
            return (time.perf_counter() - started) * 1000

        for _ in range(5):
            send(api, sender)
        latencies = [send(api, sender) for _ in range(args.rounds)]
        floor = floor_samples(f"http://127.0.0.1:{aws_port}", args.rounds)
        s50, f50 = statistics.median(latencies), statistics.median(floor)
        print(f"send text end to end: p50 {s50:.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms over {len(latencies)}")
        print(f"floor (SQS FIFO send+receive+delete, DynamoDB put+get): p50 {f50:.1f} ms, "
              f"p95 {percentile(floor, 0.95):.1f} ms")
        print(f"ratio send/floor p50: {s50 / f50:.2f}")
        print(f"one session, sequential: {1000 / s50:.1f} sends/s")

        def phone_message() -> float:
            started = time.perf_counter()
            response = api.post("/sim/message", headers=ADMIN,
                                json={"From": "15559999999", "To": "15559000000", "Body": "bench"})
            assert response.status_code == 200, response.text
            return (time.perf_counter() - started) * 1000

        for _ in range(5):
            phone_message()
        phone = [phone_message() for _ in range(args.rounds)]
        p50 = statistics.median(phone)
        print(f"sim phone-side message (/sim/message): p50 {p50:.1f} ms, p95 {percentile(phone, 0.95):.1f} ms; "
              f"ratio to send text p50: {p50 / s50:.2f}")

        def burst(token: str) -> int:
            with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=60) as client:
                for _ in range(args.per_session):
                    send(client, token)
            return args.per_session

        started = time.perf_counter()
        with ThreadPoolExecutor(args.sessions) as pool:
            total = sum(pool.map(burst, tokens[1:]))
        elapsed = time.perf_counter() - started
        print(f"one host, {args.sessions} sessions sending at once: {total / elapsed:.1f} sends/s "
              f"({total} sends in {elapsed:.1f} s; the local API server and moto share this machine's cores)")
    finally:
        gateway.terminate()
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
