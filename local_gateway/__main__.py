"""`make run`: the whole gateway on this machine, no Docker and no AWS account.

Starts an embedded AWS endpoint (moto server on 127.0.0.1) unless AWS_ENDPOINT_URL is already set,
creates every table, queue and bucket, then runs the API (127.0.0.1:1337), one session host and the
events poller as child processes. Ctrl-C or SIGTERM stops all of them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("API_HOST", "127.0.0.1"), help="API bind address")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", "1337")))
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("MOTO_PORT", "4566")),
                        help="port of the embedded AWS endpoint (0 picks a free one)")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    return parser.parse_args(argv)


def _start_moto(port: int) -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    from local_gateway.supervisor import port_is_free

    if port and not port_is_free("127.0.0.1", port):
        raise SystemExit(f"error: port {port} is taken; set MOTO_PORT (or --aws-port) to a free port")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://127.0.0.1:{bound}"


def _wait_ready(url: str, children, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if children.exited():
            raise SystemExit(f"error: a process exited during start-up: {children.exited()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"error: the API did not answer {url} within {timeout:.0f} s")


def _wait_host_registered(pid: int, children, timeout: float) -> None:
    """Ready means a connect can be placed: our session host is in the hosts table."""
    from chalicelib.core.models import HostModel

    marker = f"-{pid}-"  # session_host.registry.new_host_id: <hostname>-<pid>-<random>
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if children.exited():
            raise SystemExit(f"error: a process exited during start-up: {children.exited()}")
        if any(marker in host.host_id for host in HostModel.scan(consistent_read=True)):
            return
        time.sleep(0.2)
    raise SystemExit(f"error: the session host did not register within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("STAGE", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    moto_server = None
    if not os.environ.get("AWS_ENDPOINT_URL"):
        for key, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        moto_server, endpoint = _start_moto(args.aws_port)
        os.environ["AWS_ENDPOINT_URL"] = endpoint

    from chalicelib.core.settings import ConfigurationError, get_settings
    from local_gateway import provision
    from local_gateway.supervisor import Supervisor, port_is_free

    try:
        settings = get_settings()
        settings.validate_runnable()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not port_is_free(args.host, args.api_port):
        print(f"error: {args.host}:{args.api_port} is taken; set API_PORT (or --api-port)", file=sys.stderr)
        return 2
    provision.ensure_all(settings)

    # A plain list, not threading.Event: Event.set() in a signal handler can deadlock against the main
    # thread's own Event.wait() (both take the Event's non-reentrant lock).
    stop_requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stop_requested.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _: stop_requested.append(signum))

    children = Supervisor(env=dict(os.environ), cwd=str(PROJECT_DIR))
    exit_code = 0
    try:
        children.start("api", "-m", "local_gateway.api_server", "--host", args.host, "--port", str(args.api_port))
        host = children.start("host", "-m", "session_host")
        children.start("poller", "-m", "local_gateway.poller")
        base = f"http://{args.host}:{args.api_port}"
        _wait_ready(f"{base}/server/ok", children, args.ready_timeout)
        _wait_host_registered(host.pid, children, args.ready_timeout)
        print(
            f"WaGo gateway ready: API {base} (stage {settings.stage}, WhatsApp driver {settings.whatsapp_driver}), "
            f"AWS endpoint {os.environ['AWS_ENDPOINT_URL']}, "
            f"children {children.pids()}. Ctrl-C stops everything.",
            flush=True,
        )
        while not stop_requested:
            time.sleep(0.2)
            gone = children.exited()
            if gone:
                print(f"error: child process exited: {gone}; stopping the gateway", file=sys.stderr)
                exit_code = 1
                break
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        exit_code = 1
    finally:
        children.stop_all()
        if moto_server is not None:
            moto_server.stop()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
