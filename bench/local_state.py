"""Local mode that remembers and sleeps (issue 15): restart time, idle CPU, command latency, crash window.

Each figure is measured on `python -m local_gateway` (sim driver) started on free 127.0.0.1 ports:

- restart time with the state of 0, 100 and 1000 logged-in sessions: SIGTERM -> exit (stop), start ->
  `/server/ok` and host registered (ready), start -> every session LoggedIn again (back);
- idle CPU of the whole stack (launcher with the embedded endpoint + API + host + poller) over 60 s
  with 0 sessions, from /proc utime+stime, in % of one core;
- command p50/p95: POST /send/text end to end, after an idle pause (the host sits in a long poll) and
  back to back;
- crash window: sessions created every 20 ms, SIGKILL of the launcher, restart: how long before the
  kill the newest surviving write was acknowledged.

`--baseline REF` runs the idle CPU and command figures on another commit too (default `main`, the
code before this change, exported with `git archive` into a temporary directory) in the same run and
prints the ratios. Numbers depend on the machine and its load: compare within one run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from common import free_port, percentile, wait_for

PROJECT_DIR = Path(__file__).resolve().parent.parent
ADMIN = {"admintoken": "qwert"}


class Gateway:
    def __init__(self, project: Path, state_dir: str, extra_env: dict | None = None):
        self.api_port, self.aws_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.api_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env.update(STAGE="local", WHATSAPP_DRIVER="sim", WAGO_ACCESS_LOG="0", POWERTOOLS_LOG_LEVEL="WARNING",
                   LOCAL_STATE_DIR=state_dir, HOST_CAPACITY="2000", PYTHONPATH=str(project), **(extra_env or {}))
        self.started = time.monotonic()
        self.output = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_gateway", "--api-port", str(self.api_port), "--aws-port", str(self.aws_port)],
            cwd=project, env=env, stdout=self.output, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, timeout: float = 120) -> float:
        def ready() -> bool:
            if self.process.poll() is not None:
                self.output.seek(0)
                raise SystemExit(f"bench: the gateway exited: {self.output.read()[-3000:]}")
            self.output.seek(0)
            return "WaGo gateway ready" in self.output.read()

        wait_for(ready, timeout, "the gateway to be ready", interval=0.02)
        return time.monotonic() - self.started

    def pids(self) -> list[int]:
        found = [self.process.pid]
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == self.process.pid:
                        found.append(int(proc.name))
                except (OSError, IndexError, ValueError):
                    continue
        return found

    def stop(self, sig: int = signal.SIGTERM) -> float:
        started = time.monotonic()
        self.process.send_signal(sig)
        self.process.wait(timeout=90)
        return time.monotonic() - started


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            continue
    return total


def idle_cpu(project: Path, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as state:
        gateway = Gateway(project, state)
        try:
            gateway.wait_ready()
            time.sleep(5)  # start-up work settles
            pids = gateway.pids()
            before, started = cpu_ticks(pids), time.monotonic()
            time.sleep(seconds)
            used = (cpu_ticks(pids) - before) / os.sysconf("SC_CLK_TCK")
            return 100 * used / (time.monotonic() - started)
        finally:
            gateway.stop()


def login(api: httpx.Client, token: str, phone: str) -> None:
    for method, path, headers, body in (
        ("POST", "/session/init", ADMIN, {"Name": token, "Token": token, "Os": "Chrome"}),
        ("POST", "/session/connect", {"token": token}, {"Subscribe": ["Message"]}),
        ("POST", "/sim/scan", ADMIN, {"Token": token, "Phone": phone}),
    ):
        for attempt in range(5):  # a loaded machine can miss a heartbeat: 500 No session / 503 / 504
            response = api.request(method, path, headers=headers, json=body)
            if response.status_code == 200 or (path == "/session/init" and response.status_code == 409 and attempt):
                break
            if response.status_code < 500 or attempt == 4:
                raise SystemExit(f"bench: {path} answered {response.status_code}: {response.text}")
            time.sleep(1)


def command_latency(project: Path, rounds: int) -> tuple[list[float], list[float], list[float]]:
    with tempfile.TemporaryDirectory() as state:
        gateway = Gateway(project, state)
        try:
            gateway.wait_ready()
            api = httpx.Client(base_url=gateway.base, timeout=30)
            login(api, "bench-a", "15550060001")
            login(api, "bench-b", "15550060002")

            def send() -> float:
                started = time.perf_counter()
                response = api.post("/send/text", headers={"token": "bench-a"},
                                    json={"Phone": "15550060002", "Body": "ping"})
                assert response.status_code == 200, response.text
                return (time.perf_counter() - started) * 1000

            def check() -> float:  # a light command: what reaching the host costs, with little work there
                started = time.perf_counter()
                response = api.post("/user/check", headers={"token": "bench-a"}, json={"Phone": ["15550060002"]})
                assert response.status_code == 200, response.text
                return (time.perf_counter() - started) * 1000

            for _ in range(3):
                send()
            after_idle, light = [], []
            for _ in range(rounds):
                time.sleep(0.5)
                after_idle.append(send())
                time.sleep(0.5)
                light.append(check())
            back_to_back = [send() for _ in range(rounds)]
            return after_idle, back_to_back, light
        finally:
            gateway.stop()


def restart_times(sessions: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as state:
        gateway = Gateway(PROJECT_DIR, state)
        try:
            gateway.wait_ready()
            api = httpx.Client(base_url=gateway.base, timeout=60)
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda i: login(api, f"s{i:05d}", f"1555007{i:04d}"), range(sessions)))
            api.close()
        finally:
            stop = gateway.stop()
        again = Gateway(PROJECT_DIR, state)
        try:
            return _measure_start(again, sessions, stop)
        finally:
            if again.process.poll() is None:
                again.stop()


def _measure_start(again: Gateway, sessions: int, stop: float) -> dict[str, float]:
    ready = again.wait_ready()
    back = ready
    if sessions:
        def all_back() -> bool:
            again.output.seek(0)
            return "sessions at start (connectstartup)" in again.output.read()

        wait_for(all_back, 300, "every session back", interval=0.05)
        back = time.monotonic() - again.started
        again.output.seek(0)
        line = [text for text in again.output.read().splitlines() if "sessions at start" in text][0]
        if f"{sessions} back" not in line:
            raise SystemExit(f"bench: not every session came back: {line[:300]}")
    return {"stop": stop, "ready": ready, "back": back}


def baseline_ready(project: Path) -> tuple[float, float]:
    """(ready, stop) of the baseline with no state: what a start cost before this change."""
    with tempfile.TemporaryDirectory() as state:
        gateway = Gateway(project, state)
        try:
            return gateway.wait_ready(), gateway.stop()
        finally:
            if gateway.process.poll() is None:
                gateway.process.kill()


def crash_window(rounds: int) -> list[float]:
    windows = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as state:
            gateway = Gateway(PROJECT_DIR, state)
            gateway.wait_ready()
            api = httpx.Client(base_url=gateway.base, timeout=30)
            acknowledged: list[tuple[float, str]] = []
            done = threading.Event()

            # The round's client, stop flag and list are arguments: a writer that outlives join(timeout=10)
            # keeps writing to its own (killed) gateway, never to the next round's.
            def writer(api: httpx.Client, done: threading.Event, acknowledged: list[tuple[float, str]]) -> None:
                for n in range(1000):
                    if done.is_set():
                        return
                    name = f"c{n:04d}"
                    try:
                        if api.post("/session/init", headers=ADMIN,
                                    json={"Name": name, "Token": f"t-{name}", "Os": "x"}).status_code == 200:
                            acknowledged.append((time.monotonic(), name))
                    except httpx.HTTPError:
                        return
                    time.sleep(0.02)

            thread = threading.Thread(target=writer, args=(api, done, acknowledged), daemon=True)
            thread.start()
            time.sleep(3)
            killed = time.monotonic()
            gateway.process.send_signal(signal.SIGKILL)
            done.set()
            thread.join(timeout=10)
            gateway.process.wait(timeout=10)
            time.sleep(2)  # the children end (they got SIGTERM with the launcher)
            again = Gateway(PROJECT_DIR, state)
            again.wait_ready()
            names = {row["name"] for row in httpx.get(f"{again.base}/session/all", headers=ADMIN,
                                                       timeout=30).json()["data"]}
            again.stop()
            survived = [t for t, name in acknowledged if name in names]
            windows.append(killed - max(survived))
    return windows


def export(ref: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix=f"wago-{ref.replace('/', '-')}-"))
    archive = subprocess.run(["git", "archive", ref], cwd=PROJECT_DIR, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--sessions", default="0,100,1000")
    parser.add_argument("--crash-rounds", type=int, default=3)
    parser.add_argument("--baseline", default="main", help="git ref to compare idle CPU and latency with ('' skips)")
    parser.add_argument("--only", default="", help="comma list of: idle,latency,restart,crash")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(","))) or {"idle", "latency", "restart", "crash"}
    baseline = export(args.baseline) if args.baseline and only & {"idle", "latency", "restart"} else None

    if "idle" in only:
        now = idle_cpu(PROJECT_DIR, args.idle_seconds)
        line = f"idle CPU, 0 sessions, {args.idle_seconds:.0f} s: {now:.2f} % of one core"
        if baseline:
            before = idle_cpu(baseline, args.idle_seconds)
            line += f" (baseline {args.baseline}: {before:.2f} %, ratio {now / before:.2f})"
        print(line, flush=True)
    if "latency" in only:
        runs = [("this", PROJECT_DIR)] + ([(args.baseline, baseline)] if baseline else [])
        for label, project in runs:
            after_idle, back_to_back, light = command_latency(project, args.rounds)
            print(f"/send/text ms ({label}): after 0.5 s idle p50 {percentile(after_idle, 0.5):.0f} "
                  f"p95 {percentile(after_idle, 0.95):.0f}; back to back p50 {percentile(back_to_back, 0.5):.0f} "
                  f"p95 {percentile(back_to_back, 0.95):.0f}; /user/check after idle p50 "
                  f"{percentile(light, 0.5):.0f} p95 {percentile(light, 0.95):.0f}", flush=True)
    if "restart" in only:
        if baseline:
            ready, stop = baseline_ready(baseline)
            print(f"baseline {args.baseline}, empty: stop {stop:.1f} s, ready {ready:.1f} s (nothing is kept)",
                  flush=True)
        for count in (int(n) for n in args.sessions.split(",")):
            times = restart_times(count)
            print(f"restart with {count} logged-in sessions: stop {times['stop']:.1f} s, ready {times['ready']:.1f} s, "
                  f"all back {times['back']:.1f} s", flush=True)
    if "crash" in only:
        windows = crash_window(args.crash_rounds)
        print("crash window (newest surviving write before SIGKILL): "
              + ", ".join(f"{w * 1000:.0f} ms" for w in windows) + f"; max {max(windows) * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
