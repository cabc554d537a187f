"""Webhook fan-out throughput: events/s delivered by one worker vs a bare async POST loop.

Same run, same receiver (an asyncio HTTP/1.1 server on 127.0.0.1 in its own process, answering 200,
counting TCP connections), moto server on loopback in its own process:
  handler    the fan-out handler alone, called with batches of the stack's fanoutBatchSize (25) as
             Lambda gives them (received from the events queue beforehand, not timed): batch read of
             sessions and delivery log, POST (form fields token + jsonData, signed, 10 in flight),
             delivery log write;
  worker     the same handler fed by the local poller (batches of 10: one SQS receive; receive and
             delete included), as `make run`;
  baseline   httpx.AsyncClient POSTing the same form bodies, with the same number in flight as the
             handler (10), nothing else.
Prints the median events/s of each over several rounds, the ratios to the baseline, the AWS calls
per event of the handler (counted, by operation) and the receiver's new TCP connections per event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import free_port, stdout_to_devnull, wait_for  # noqa: E402 - bench/ is on sys.path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
CONCURRENCY = 10



def receiver_main(port: int, counter, connections, ready) -> None:
    """Minimal keep-alive HTTP/1.1 server: reads each request's body, answers 200, counts POSTs and
    connections."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with connections.get_lock():
            connections.value += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip())
                if length:
                    await reader.readexactly(length)
                with counter.get_lock():
                    counter.value += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())



def _stack_batch_size() -> int:
    """The fan-out event source's BatchSize the CDK stack deploys by default (infra/wago_infra/stack.py)."""
    sys.path.insert(0, str(PROJECT_DIR / "infra"))
    from wago_infra.stack import StageConfig

    return StageConfig(stage="dev").fanout_batch_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="events per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=_stack_batch_size(),
                        help="records per handler invocation (default: the stack's fanoutBatchSize)")
    args = parser.parse_args()

    counter = multiprocessing.Value("l", 0)
    connections = multiprocessing.Value("l", 0)
    ready = multiprocessing.Event()
    receiver_port = free_port()
    receiver = multiprocessing.Process(target=receiver_main, args=(receiver_port, counter, connections, ready),
                                       daemon=True)
    receiver.start()
    ready.wait(10)

    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{moto_port}"
    os.environ.update(STAGE="local", AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      POWERTOOLS_METRICS_NAMESPACE="bench")
    try:
        import httpx

        wait_for(lambda: _up(endpoint), 60, "the moto server", interval=0.005)
        from app import deliver_events
        from chalicelib.core.contract import WireEvent
        from chalicelib.core.models import SessionModel
        from chalicelib.core.settings import get_settings
        from chalicelib.webhooks.delivery import form_fields
        from local_gateway import provision
        from local_gateway.aws_calls import count_aws_calls
        from local_gateway.poller import LambdaContext, QueuePoller, to_lambda_event

        provision.ensure_all()
        url = f"http://127.0.0.1:{receiver_port}/hook"
        SessionModel("bench", id=1, name="bench", webhook=url, events=["All"],
                     webhook_secret="bench-secret-0123456789").save()
        settings = get_settings()
        in_handler = [0.0]

        def timed_handler(event, context):
            started = time.perf_counter()
            try:
                return deliver_events(event, context)
            finally:
                in_handler[0] += time.perf_counter() - started

        poller = QueuePoller(settings.events_queue_name, timed_handler, "deliver_events", wait_seconds=0)
        sqs = poller.sqs

        def make_events(n: int) -> list[str]:
            return [json.dumps({"v": 1, "event_id": uuid.uuid4().hex, "token": "bench", "seq": i, "ts": time.time(),
                                "type": "Message", "event": {"Info": {"ID": f"M{i}"}, "Message": {"text": "hi"}},
                                "extra": {}}) for i in range(n)]

        def enqueue(n: int) -> None:
            bodies = make_events(n)
            for start in range(0, n, 10):
                sqs.send_message_batch(QueueUrl=poller.queue_url, Entries=[
                    {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])])

        def worker_round(n: int) -> float:
            enqueue(n)
            target = counter.value + n
            in_handler[0] = 0.0
            started = time.perf_counter()
            deadline = time.monotonic() + 600
            while counter.value < target and time.monotonic() < deadline:
                poller.poll_once()
            elapsed = time.perf_counter() - started
            if counter.value < target:
                raise SystemExit(f"worker delivered {n - (target - counter.value)} of {n}")
            outside.append(1 - in_handler[0] / elapsed)
            return n / elapsed

        def handler_round(n: int, calls_out: list | None = None) -> float:
            enqueue(n)
            batches, handles, pending = [], [], []
            deadline = time.monotonic() + 120
            while sum(len(b["Records"]) for b in batches) + len(pending) < n and time.monotonic() < deadline:
                messages = sqs.receive_message(QueueUrl=poller.queue_url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=600, AttributeNames=["All"]).get("Messages", [])
                if messages:  # gathered into batches of the stack's size, as Lambda's SQS poller does
                    pending.extend(messages)
                    handles += [m["ReceiptHandle"] for m in messages]
                    while len(pending) >= args.batch:
                        batches.append(to_lambda_event(pending[:args.batch], poller.queue_arn, settings.region))
                        del pending[:args.batch]
            if pending:
                batches.append(to_lambda_event(pending, poller.queue_arn, settings.region))
            target = counter.value + n
            with count_aws_calls() as calls:
                started = time.perf_counter()
                for batch in batches:
                    response = deliver_events(batch, LambdaContext("deliver_events"))
                    if response["batchItemFailures"]:
                        raise SystemExit(f"handler failed records: {response}")
                elapsed = time.perf_counter() - started
            if counter.value < target:
                raise SystemExit(f"handler delivered {n - (target - counter.value)} of {n}")
            for start in range(0, len(handles), 10):  # as Lambda does after a successful batch (not timed)
                sqs.delete_message_batch(QueueUrl=poller.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start:start + 10])])
            if calls_out is not None:
                calls_out.append(calls)
            return n / elapsed

        def baseline_round(n: int) -> float:
            forms = [form_fields(WireEvent.model_validate_json(b)) for b in make_events(n)]

            async def run() -> float:
                async with httpx.AsyncClient(timeout=10) as client:
                    queue = list(forms)

                    async def lane() -> None:
                        while queue:
                            response = await client.post(url, data=queue.pop())
                            assert response.status_code == 200

                    started = time.perf_counter()
                    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
                    return time.perf_counter() - started

            return n / asyncio.run(run())

        # Powertools metrics as deployed (EMF flushed per batch to stdout, which Lambda ships to
        # CloudWatch): their cost is measured, their lines go to /dev/null.
        with stdout_to_devnull():
            outside: list[float] = []
            worker_round(20)  # warm up every path (connections, imports, tables)
            handler_round(20)
            baseline_round(20)
            connections_before = connections.value
            counted: list = []
            handler_round(args.events, counted)
            new_connections = connections.value - connections_before
            worker, handler, baseline, outside = [], [], [], []
            for _ in range(args.rounds):  # interleaved, so machine noise hits all alike
                handler.append(handler_round(args.events))
                baseline.append(baseline_round(args.events))
                worker.append(worker_round(args.events))
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        receiver.terminate()
        receiver.join(timeout=10)

    h, w, b = statistics.median(handler), statistics.median(worker), statistics.median(baseline)
    [calls] = counted
    print(f"webhook fan-out, {args.events} events x {args.rounds} rounds, receiver and moto server on 127.0.0.1, "
          f"{CONCURRENCY} in flight; handler batches of {args.batch} (the worker's local poller: 10)")
    print(f"handler   {h:9.1f} events/s (median; rounds: {', '.join(f'{x:.0f}' for x in handler)})")
    print(f"worker    {w:9.1f} events/s (median; rounds: {', '.join(f'{x:.0f}' for x in worker)}; poller's SQS "
          f"receive + delete included)")
    print(f"baseline  {b:9.1f} events/s (median; rounds: {', '.join(f'{x:.0f}' for x in baseline)})")
    print(f"ratio     {h / b:9.3f} handler / bare async POST loop (target >= 0.5)")
    print(f"ratio     {w / b:9.3f} worker / bare async POST loop; {statistics.median(outside):.0%} of the worker's "
          f"time is the poller's SQS receive + delete on moto (moto scans the whole queue per receive)")
    per_event = {f"{svc}.{op}": round(n / args.events, 3) for (svc, op), n in sorted(calls.items())}
    print(f"AWS calls per event (handler): {calls.total() / args.events:.3f} "
          f"(writes {calls.writes() / args.events:.3f}) {per_event}")
    print(f"receiver TCP connections per event (handler, after warm-up): {new_connections / args.events:.3f}")
    return 0


def _up(endpoint: str) -> bool:
    import httpx

    try:
        httpx.get(endpoint, timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
