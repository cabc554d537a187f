"""`make run`: the whole gateway on this machine, no Docker and no AWS account.

Starts an embedded AWS endpoint (moto server on 127.0.0.1, in this process) unless AWS_ENDPOINT_URL is
already set, creates every table, queue and bucket, restores the durable state from LOCAL_STATE_DIR
(local_gateway/state.py) and keeps it written there, then runs the API (127.0.0.1:1337), one session
host and the events poller as supervised child processes (restarted with backoff when they exit).
Sessions marked connected come back at start (CONNECT_ON_STARTUP, local_gateway/startup.py).
Ctrl-C or SIGTERM stops all of them and writes a final snapshot; `--reset` (`make reset`) starts empty.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    from local_gateway.state import DEFAULT_SNAPSHOT_SECONDS, DEFAULT_STATE_DIR

    parser = argparse.ArgumentParser(prog="python -m local_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("API_HOST", "127.0.0.1"), help="API bind address")
    # (string defaults go through `type` too: API_PORT=abc is argparse's usage error, not a traceback)
    parser.add_argument("--api-port", type=int, default=os.environ.get("API_PORT", "1337"), help="API port (API_PORT)")
    parser.add_argument("--aws-port", type=int, default=os.environ.get("MOTO_PORT", "4566"),
                        help="port of the embedded AWS endpoint (MOTO_PORT; 0 picks a free one)")
    parser.add_argument("--state-dir",
                        default=os.environ.get("LOCAL_STATE_DIR") or str(PROJECT_DIR / DEFAULT_STATE_DIR),
                        help="where the embedded endpoint's durable state lives (LOCAL_STATE_DIR)")
    parser.add_argument("--snapshot-seconds", type=float,
                        default=os.environ.get("LOCAL_SNAPSHOT_SECONDS", str(DEFAULT_SNAPSHOT_SECONDS)),
                        help="how often changed state is written (bounds what a crash can lose)")
    parser.add_argument("--reset", action="store_true", help="delete the state directory first: start empty")
    parser.add_argument("--reset-only", action="store_true", help="delete the state directory and exit")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not 0.05 <= args.snapshot_seconds <= 60:
        parser.error("--snapshot-seconds (LOCAL_SNAPSHOT_SECONDS) must be between 0.05 and 60")
    return args


def _wait_ready(url: str, children, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if children.exited():
            raise SystemExit(f"error: a process exited during start-up: {children.exited()}")
        try:
            if httpx.get(url, timeout=5.0).status_code == 200:  # a request in the backlog waits for the API child
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


def _forget_dead_host(child, pid: int) -> None:
    """A host child that exited is certainly gone (we reaped it): hand its sessions over to RELEASED
    and remove its row and queue now, so the restarted host adopts them without waiting out the lease.
    Hosts find orphans only through the owner index (RELEASED, or hosts whose row says dead): a session
    left owned by a host with no row would never be adopted, so the hand-over comes before the delete."""
    if child.name != "host":
        return
    from pynamodb.exceptions import UpdateError

    from chalicelib.core.aws import client
    from chalicelib.core.models import HostModel, SessionModel
    from chalicelib.core.models.sessions import RELEASED

    marker = f"-{pid}-"
    sqs = client("sqs")
    for host in HostModel.scan(consistent_read=True):
        if marker not in host.host_id:
            continue
        to_restore = SessionModel.auto_connect == True  # noqa: E712 - a pynamodb condition, not a truth test
        for entry in SessionModel.by_owner.query(host.host_id, filter_condition=to_restore):
            try:
                SessionModel(entry.token).update(actions=[SessionModel.owner_host.set(RELEASED)],
                                                 condition=SessionModel.owner_host == host.host_id)
            except UpdateError:
                pass  # taken or deleted meanwhile
        host.delete()
        if host.command_queue_url:
            try:
                sqs.delete_queue(QueueUrl=host.command_queue_url)
            except Exception:
                pass
        print(f"launcher: removed the exited host's row {host.host_id}; its sessions are adopted by the new host",
              file=sys.stderr, flush=True)


def _listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, owned by the launcher so an API restart refuses no connection."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from local_gateway import state as local_state

    if args.reset or args.reset_only:
        try:
            removed = local_state.LocalState.reset(args.state_dir)
        except local_state.StateDirBusy as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"local state {'deleted' if removed else 'was already empty'}: {Path(args.state_dir).resolve()}",
              flush=True)
        if args.reset_only:
            return 0
    os.environ.setdefault("STAGE", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    logging.basicConfig(format="%(message)s")
    moto_server = tracker = None
    if not os.environ.get("AWS_ENDPOINT_URL"):
        from local_gateway.supervisor import port_is_free

        for key, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        if args.aws_port and not port_is_free("127.0.0.1", args.aws_port):
            print(f"error: port {args.aws_port} is taken; set MOTO_PORT (or --aws-port) to a free port",
                  file=sys.stderr)
            return 2
        moto_server, endpoint, tracker = local_state.start_moto(args.aws_port)
        os.environ["AWS_ENDPOINT_URL"] = endpoint

    from chalicelib.core.settings import ConfigurationError, get_settings
    from local_gateway import provision, startup
    from local_gateway.supervisor import ChildKeepsCrashing, Supervisor, port_is_free

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

    store = snapshotter = None
    if tracker is not None:
        store = local_state.LocalState(args.state_dir, local_state.Durable.from_settings(settings),
                                       local_state.Backends(settings.region))
        try:
            store.acquire()
        except (local_state.StateDirBusy, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            restored = store.restore()
        except local_state.StateUnreadable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        tracker.take()  # provisioning and restoring changed nothing worth writing again
        print(f"local state: {store.root} (restored {restored.summary()}; written every "
              f"{args.snapshot_seconds:g} s; `make reset` starts empty)", flush=True)
    expected, reset = startup.prepare_sessions(settings.connect_on_startup)
    if store is not None:  # the reset live state went through the tracker: the first snapshot has it
        assert tracker is not None, "the local state is kept only with the embedded (tracked) moto server"
        snapshotter = local_state.Snapshotter(store, tracker, args.snapshot_seconds)
        snapshotter.start()

    # A plain list, not threading.Event: Event.set() in a signal handler can deadlock against the main
    # thread's own Event.wait() (both take the Event's non-reentrant lock).
    stop_requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stop_requested.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _: stop_requested.append(signum))

    children = Supervisor(env=dict(os.environ), cwd=str(PROJECT_DIR), on_exit=_forget_dead_host,
                          death_signal=signal.SIGKILL if moto_server is not None else signal.SIGTERM)
    exit_code = 0
    listener = _listen(args.host, args.api_port)
    try:
        fd = listener.fileno()
        children.start("api", "-m", "local_gateway.api_server", "--host", args.host, "--port", str(args.api_port),
                       "--fd", str(fd), pass_fds=(fd,))
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
        if expected:
            timeout = settings.connect_wait_seconds + 2 * settings.host_heartbeat_seconds + 10 + 0.05 * len(expected)
            threading.Thread(target=lambda: print(startup.report(expected, timeout), flush=True),
                             name="startup-report", daemon=True).start()
        elif not settings.connect_on_startup:
            print(f"sessions at start: CONNECT_ON_STARTUP is off; {reset} session(s) left disconnected", flush=True)
        while not stop_requested:
            time.sleep(0.5)
            children.supervise()
    except ChildKeepsCrashing as exc:
        print(f"error: {exc}; stopping the gateway", file=sys.stderr, flush=True)
        exit_code = 1
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        exit_code = 1
    finally:
        children.stop_all()
        listener.close()
        if snapshotter is not None:
            snapshotter.stop()  # after the children: their last writes (released sessions) are kept
            written = snapshotter.state
            print(f"local state written to {written.root} ({written.snapshots} snapshots, longest write "
                  f"{written.max_write_seconds * 1000:.0f} ms)", flush=True)
        if moto_server is not None:
            moto_server.stop()
        if store is not None:
            store.release()
    return exit_code


if __name__ == "__main__":
    code = main()
    # Everything is written (fsynced) and every child has exited: skip the interpreter's teardown of
    # moto's in-memory backends, which took ~5 s of a loaded machine on every stop.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
