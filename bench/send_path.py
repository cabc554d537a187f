"""Send path: POST /send/text end to end (HTTP -> API -> SQS FIFO -> host -> sim -> reply item -> HTTP)
against the floor of the same AWS calls measured in the same run (a bare SQS FIFO send + long-poll
receive + DynamoDB put + consistent get), and sends per second for one session and for one host.
Also the simulator's phone side, POST /sim/message (a `sim.message` operation run on any live sim host),
against /send/text in the same run.

Runs `python -m local_gateway` (moto server, API, one sim session host, poller) on free 127.0.0.1 ports,
with its own temporary state directory.
Prints medians and p95 in milliseconds and the ratio of the send's p50 to the floor's.

Then counts the AWS calls of one send (deterministic, not timed): the same code in this process (the
Chalice app, a sim session host's threads) on an in-process moto server, every botocore call counted
by the thread that made it: the request's path (API + host until the answer), then what follows it
(the command's acknowledgement, the recipient's delivery, the Delivered receipt).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import LocalGateway, free_port, percentile, tree  # noqa: E402 - bench/ is on sys.path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ADMIN = {"admintoken": "qwert"}




def gateway_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(STAGE="local", WHATSAPP_DRIVER="sim", WAGO_ACCESS_LOG="0", LOG_LEVEL="WARNING",
               POWERTOOLS_LOG_LEVEL="WARNING")
    return env


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


def count_calls(sends: int) -> None:
    """AWS calls per /send/text with an Id, by role, median over `sends` (see the module doc)."""
    import logging
    import threading

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    saved = dict(os.environ)
    os.environ.update(STAGE="local", AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto.get_host_and_port()[1]}",
                      AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      POWERTOOLS_LOG_LEVEL="WARNING", LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
    sys.path.insert(0, str(PROJECT_DIR))
    host = None
    try:
        from chalice.test import Client

        from app import app
        from chalicelib.bus import Bus
        from chalicelib.core import ops, outbox
        from chalicelib.core.models import SessionModel
        from chalicelib.core.settings import get_settings
        from chalicelib.sessions import create_session
        from local_gateway import provision
        from local_gateway.aws_calls import by_role, count_aws_calls
        from session_host.host import SessionHost

        provision.ensure_all()
        settings = get_settings().model_copy(update={"whatsapp_driver": "sim"})
        host = SessionHost(settings, host_id="bench-count")
        host.start()
        bus = Bus(settings=settings)
        for token, phone in (("count-a", "15558000001"), ("count-b", "15558000002")):
            create_session(token, token, "Chrome")
            bus.command(SessionModel.get(token), ops.CONNECT, ops.Connect(), place=True)
            bus.command(SessionModel.get(token, consistent_read=True), ops.SIM_SCAN, ops.SimScan(phone=phone))
        on_path, after, reads, walls, in_aws = [], [], [], [], []
        per_role: dict[str, list[dict]] = {}
        with Client(app) as client:
            def settle(message_id: str) -> None:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    record = outbox.status_of("count-a", message_id)
                    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
                    if record is not None and record.status == "delivered" and not timers \
                            and host.loop.lanes.pending() == 0:
                        return
                    time.sleep(0.01)
                raise SystemExit("bench: a counted send did not settle")

            for n in range(sends + 3):
                message_id = f"count-{n}"
                with count_aws_calls(trace=True) as calls:
                    headers = {"token": "count-a", "Content-Type": "application/json"}
                    started = time.perf_counter()
                    response = client.http.post("/send/text", headers=headers,
                                                body=f'{{"Phone":"15558000002","Body":"bench","Id":"{message_id}"}}')
                    ended = time.perf_counter()
                    assert response.status_code == 200, response.body
                    answered = len(calls.trace)
                    settle(message_id)
                if n < 3:
                    continue  # warm-up: clients, the host-row cache, the reply timing
                walls.append((ended - started) * 1000)
                in_aws.append(_endpoint_ms(calls.spans[:answered], started, ended))
                roles = by_role(calls.trace)
                path = by_role(calls.trace[:answered])  # what the API and the host did until the answer
                api, host_path = path.get("api", {}), dict(path.get("host", {}))
                host_path.pop("sqs.DeleteMessage", None)  # the acknowledgement follows the reply
                reads.append(api.get("dynamodb.GetItem", 0) - 1)  # but the session's (auth)
                on_path.append(sum(api.values()) + sum(host_path.values()))
                background = sum(sum(c.values()) for role, c in roles.items() if role != "api")
                after.append(background - sum(host_path.values()))  # the host's after the answer, delivery, receipt
                for role, counter in roles.items():
                    if role != "api":
                        per_role.setdefault(role, []).append(dict(counter))
                per_role.setdefault("api", []).append(dict(api))  # (the settle loop's own reads left out)
        print(f"AWS calls per /send/text with an Id (median of {sends}; counted in process, sim driver):")
        print(f"  on the request's path (API + host until the answer): {statistics.median(on_path):.0f} "
              f"(min {min(on_path)}, max {max(on_path)}; target <= 8), of which reply reads "
              f"{statistics.median(reads):.0f} (min {min(reads)}): "
              f"{statistics.median(on_path) - statistics.median(reads) + 1:.0f} with one reply read")
        print(f"  after the answer (acknowledgement, delivery, receipt): {statistics.median(after):.0f}")
        for role, samples in sorted(per_role.items()):
            ops_seen = sorted({op for sample in samples for op in sample})
            detail = ", ".join(f"{op} {statistics.median([s.get(op, 0) for s in samples]):g}" for op in ops_seen)
            print(f"  {role:<9} {detail}")
        # The embedded endpoint's share: the same sends, timed in this process against this moto.
        floor = statistics.median(floor_samples(os.environ["AWS_ENDPOINT_URL"], max(20, sends)))
        wall, aws_ms, calls_on_path = statistics.median(walls), statistics.median(in_aws), statistics.median(on_path)
        per_call, floor_per_call = aws_ms / max(1, calls_on_path - 1), floor / 5
        estimate = wall - aws_ms + (calls_on_path - 1) * floor_per_call
        print(f"Where a send's time goes (in process, median of {sends}; moto in this process, the floor measured "
              f"against it here):")
        print(f"  send {wall:.1f} ms = {aws_ms:.1f} ms waiting on AWS calls of its path ({100 * aws_ms / wall:.0f}%; "
              f"the receive that carried the command left out) + {wall - aws_ms:.1f} ms in our code (Chalice, the "
              f"host's threads, the sim driver, JSON)")
        print(f"  per call on the path {per_call:.1f} ms vs {floor_per_call:.1f} ms per call of the floor alone "
              f"({per_call / floor_per_call:.1f}x: moto serves the background delivery and receipt calls, "
              f"and the host's own, in one process at the same time)")
        print(f"  at the floor's per-call cost the send would take about {estimate:.1f} ms = "
              f"{estimate / floor:.2f}x the floor ({floor:.1f} ms) (an estimate: ratio with moto as measured: "
              f"{wall / floor:.2f}x)")
    finally:
        if host is not None:
            host.stop(grace_seconds=5)
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)


def _cpu_by_process(launcher_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of the launcher (moto and the state journal) and each child, by role."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for pid in tree(launcher_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        role = "launcher: moto endpoint, state journal" if pid == launcher_pid else next(
            (part.decode() for part in command if part.startswith((b"local_gateway.", b"session_host"))), "other")
        found[role] = found.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return found


def _endpoint_ms(spans: list[tuple[str, str, str, float, float]], started: float, ended: float) -> float:
    """Milliseconds of [started, ended] during which the request's path (the API's thread, the host's
    command threads) waited on an AWS call: the union of those calls' spans. The ReceiveMessage that
    carried the command is left out (a long poll begun before the request: waiting, not service)."""
    intervals = sorted((max(a, started), min(b, ended)) for thread, _, op, a, b in spans
                       if (thread == "MainThread" or thread == "commands" or thread.startswith("command_"))
                       and not op.startswith("ReceiveMessage") and b > started and a < ended)
    total, reach = 0.0, started
    for a, b in intervals:
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=8, help="sessions sending at once for the host figure")
    parser.add_argument("--per-session", type=int, default=25)
    parser.add_argument("--count-sends", type=int, default=10, help="sends whose AWS calls are counted")
    args = parser.parse_args()

    import httpx

    api_port, aws_port = free_port(), free_port()
    with LocalGateway(api_port, aws_port, gateway_env()) as gateway:
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
        cpu_before = _cpu_by_process(gateway.process.pid)
        latencies = [send(api, sender) for _ in range(args.rounds)]
        cpu_after = _cpu_by_process(gateway.process.pid)
        floor = floor_samples(f"http://127.0.0.1:{aws_port}", args.rounds)
        s50, f50 = statistics.median(latencies), statistics.median(floor)
        print(f"send text end to end: p50 {s50:.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms over {len(latencies)}")
        print(f"floor (SQS FIFO send+receive+delete, DynamoDB put+get): p50 {f50:.1f} ms, "
              f"p95 {percentile(floor, 0.95):.1f} ms")
        print(f"ratio send/floor p50: {s50 / f50:.2f}")
        print(f"one session, sequential: {1000 / s50:.1f} sends/s")
        wall_per_send = statistics.mean(latencies)
        print(f"CPU per send in that loop, by process (mean wall per send {wall_per_send:.1f} ms):")
        for name in cpu_before:
            used = (cpu_after.get(name, 0.0) - cpu_before[name]) * 1000 / len(latencies)
            print(f"  {name:<40} {used:6.1f} ms ({100 * used / wall_per_send:3.0f}% of the wall time)")

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
    count_calls(args.count_sends)
    return 0


if __name__ == "__main__":
    sys.exit(main())
