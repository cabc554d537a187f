"""Session host: memory per idle session (sim; neonize clients offline), sessions per host until the
memory/CPU budget, connect -> QR latency (sim), failover time after a host is SIGKILLed, and under the
faults fencing must survive (tests/faults/cluster.py: three hosts, lease 4 s, margin 0.5 s): failover
time after a host is paused (SIGSTOP), and the time until every session has exactly one client again
(counted from each host's own report) after the paused host resumes and after a frozen AWS endpoint
thaws.

Everything runs on 127.0.0.1: one moto server, session hosts as real `python -m session_host`
processes. neonize clients are "offline idle": their dial goes to a black-hole SOCKS proxy on
127.0.0.1, so each holds a registered Go client with a pending connection (a logged-in session's
footprint cannot be measured without WhatsApp; research/neonize.md §11). Prints medians.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import free_port, tree, wait_for  # noqa: E402 - bench/ is on sys.path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")



def rss_mib(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total / 2**20


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / TICKS


class BlackHole:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return



class Fleet:
    """Session-host processes against the shared moto endpoint."""

    def __init__(self, endpoint: str, data_dir: str):
        self.endpoint = endpoint
        self.data_dir = data_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, driver: str, **env_extra: str) -> tuple[subprocess.Popen, str]:
        from chalicelib.core.models import HostModel

        before = {h.host_id for h in HostModel.scan(consistent_read=True)}
        env = {**os.environ, "STAGE": "test", "AWS_ENDPOINT_URL": self.endpoint, "WHATSAPP_DRIVER": driver,
               "HOST_HEARTBEAT_SECONDS": "1", "HOST_LEASE_SECONDS": "4", "HOST_CAPACITY": "100000",
               "NEONIZE_DATA_DIR": self.data_dir, **env_extra}
        process = subprocess.Popen([sys.executable, "-m", "session_host"], cwd=PROJECT_DIR, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        host_id = wait_for(lambda: ({h.host_id for h in HostModel.scan(consistent_read=True)} - before or {None}).pop(),
                           30, "a host to register")
        return process, host_id

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def bus():
    from chalicelib.bus import Bus

    return Bus()


def new_session(token: str):
    from chalicelib import sessions

    return sessions.create_session(token, token, "Chrome")


def retire(prefix: str) -> None:
    """Delete a phase's sessions, so the next phase's hosts do not adopt them as orphans."""
    from chalicelib import sessions
    from chalicelib.core.models import SessionModel

    for row in SessionModel.scan(SessionModel.token.startswith(prefix), consistent_read=True):
        sessions.delete_session(row.token)


def place_on(host_id: str, drain_others: bool = True):
    """Make `host_id` the only host taking placements (others draining) while a block of connects runs."""
    from chalicelib.core.models import HostModel

    for host in HostModel.scan(consistent_read=True):
        if host.host_id == host_id or drain_others:
            host.update(actions=[HostModel.status.set("up" if host.host_id == host_id else "draining")])


def sim_sessions(fleet: Fleet, count: int, prefix: str, workers: int = 8) -> dict:
    process, host_id = fleet.start("sim")
    place_on(host_id)
    time.sleep(2)
    idle_rss, cpu0 = rss_mib(process.pid), cpu_seconds(process.pid)
    latencies: list[float] = []
    from chalicelib.core import ops
    from chalicelib.core.models import SessionModel

    def one(i: int):
        token = f"{prefix}-{i}"
        session = new_session(token)
        started = time.perf_counter()
        bus().command(session, ops.CONNECT, ops.Connect(events=["All"]), place=True)
        row = SessionModel.get(token, consistent_read=True)
        assert row.qr_code, "no QR after connect"
        latencies.append((time.perf_counter() - started) * 1000)
        bus().command(row, ops.SIM_SCAN, ops.SimScan(phone=f"1555{i:07d}"))

    serial = min(20, count)
    for i in range(serial):  # latency on a quiet host first, then the rest concurrently
        one(i)
    quiet = list(latencies)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(serial, count)))
    time.sleep(3)  # let the heartbeat and allocator settle
    loaded_rss = rss_mib(process.pid)
    window_start, cpu_start = time.monotonic(), cpu_seconds(process.pid)
    time.sleep(10)
    idle_cpu = (cpu_seconds(process.pid) - cpu_start) / (time.monotonic() - window_start)
    return {"host": (process, host_id), "idle_rss": idle_rss, "loaded_rss": loaded_rss, "quiet": quiet,
            "latencies": latencies[serial:],
            "cpu_share": idle_cpu, "cpu_before": cpu0}


def neonize_sessions(fleet: Fleet, count: int, workers: int) -> dict:
    hole = BlackHole()
    process, host_id = fleet.start("neonize", NEONIZE_PROXY=f"socks5://127.0.0.1:{hole.port}",
                                   NEONIZE_WORKERS=str(workers), CONNECT_WAIT_SECONDS="0.2",
                                   NEONIZE_START_SPACING_SECONDS="0.05")
    place_on(host_id)
    time.sleep(4)  # workers import neonize
    idle_rss = rss_mib(process.pid)

    from chalicelib.core import ops

    def one(i: int):
        bus().command(new_session(f"nz-{i}"), ops.CONNECT, ops.Connect(), place=True)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))
    wait_for(lambda: len(hole.held) >= count, 60, "every neonize client dialling")
    time.sleep(2)
    loaded_rss = rss_mib(process.pid)
    process.kill()  # workers die with it (PR_SET_PDEATHSIG); their pending dials would block stop() ~60 s
    process.wait(10)
    return {"idle_rss": idle_rss, "loaded_rss": loaded_rss, "pids": len(tree(process.pid))}


def failover_round(fleet: Fleet, round_no: int, sessions: int) -> float:
    from chalicelib.core import ops
    from chalicelib.core.models import SessionModel

    survivor, survivor_id = fleet.start("sim")
    victim, victim_id = fleet.start("sim")
    place_on(victim_id)
    tokens = []
    for i in range(sessions):
        token = f"fo{round_no}-{i}"
        session = new_session(token)
        bus().command(session, ops.CONNECT, ops.Connect(), place=True)
        bus().command(SessionModel.get(token, consistent_read=True), ops.SIM_SCAN,
                      ops.SimScan(phone=f"1666{round_no}{i:06d}"))
        tokens.append(token)
    place_on(survivor_id, drain_others=False)  # the victim stays "up": only its lease may expire
    victim.kill()
    killed = time.monotonic()

    def back() -> bool:
        rows = [SessionModel.get(t, consistent_read=True) for t in tokens]
        return all(r.owner_host == survivor_id and r.logged_in for r in rows)

    wait_for(back, 60, "failover")
    elapsed = time.monotonic() - killed
    survivor.kill()
    survivor.wait(10)
    retire(f"fo{round_no}-")
    return elapsed


def fault_round(kind: str, sessions: int) -> dict[str, float]:
    """One pause or stall on a fresh three-host cluster; seconds to failover and to one client per session."""
    from tests.faults.cluster import FAST, Cluster

    lease, margin = float(FAST["HOST_LEASE_SECONDS"]), float(FAST["HOST_LEASE_MARGIN_SECONDS"])
    hold = lease + margin + 2 * float(FAST["HOST_HEARTBEAT_SECONDS"]) + 1.5
    cluster = Cluster(Path(tempfile.mkdtemp(prefix=f"bench-{kind}-")), hosts=3).start()
    try:
        run = f"{kind[:2]}{time.monotonic_ns() % 10**6}"
        tokens = [f"tok-{run}-{i}" for i in range(sessions)]
        cluster.linked_sessions(tokens, [f"1777{int(time.time()) % 1000:03d}{i:04d}" for i in range(sessions)])
        owners = {t: cluster.session_row(t)["owner_host"] for t in tokens}
        victim_id = max(set(owners.values()), key=list(owners.values()).count)
        lost = [t for t in tokens if owners[t] == victim_id]
        result: dict[str, float] = {}
        cluster.pause(f"host-{cluster.index_of(victim_id)}" if kind == "pause" else "moto")
        began = time.monotonic()
        if kind == "pause":
            def adopted() -> bool:
                rows = [cluster.session_row(t) for t in lost]
                return all(r.get("owner_host") not in (None, victim_id) and r.get("logged_in") for r in rows)

            wait_for(adopted, 60, "adoption of the paused host's sessions")
            result["failover"] = time.monotonic() - began
        time.sleep(max(0.0, hold - (time.monotonic() - began)))
        ended_wall, ended = time.time(), time.monotonic()
        cluster.resume(f"host-{cluster.index_of(victim_id)}" if kind == "pause" else "moto")

        def one_each() -> bool:
            holders = cluster.clients_per_session(ended_wall)
            return all(len(holders.get(t, [])) == 1 for t in tokens)

        wait_for(one_each, 60, "one client per session")
        result["one_client"] = time.monotonic() - ended
        return result
    finally:
        cluster.close()


def fault_figures(rounds: int, sessions: int) -> None:
    pauses = [fault_round("pause", sessions) for _ in range(rounds)]
    stalls = [fault_round("stall", sessions) for _ in range(rounds)]

    def line(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})"

    print(f"failover after SIGSTOP of a host ({sessions} sessions on 3 hosts, heartbeat 1 s, lease 4 s, margin "
          f"0.5 s): {line([p['failover'] for p in pauses])}; adoption waits lease + margin after the last "
          f"heartbeat, 3.5-4.5 s after the pause")
    print(f"exactly one client per session again after SIGCONT: {line([p['one_client'] for p in pauses])}")
    print(f"exactly one client per session again after the AWS endpoint thaws (frozen 8.5 s): "
          f"{line([s['one_client'] for s in stalls])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-sessions", type=int, default=200)
    parser.add_argument("--neonize-sessions", type=int, default=40)
    parser.add_argument("--neonize-workers", type=int, default=2)
    parser.add_argument("--failover-rounds", type=int, default=3)
    parser.add_argument("--failover-sessions", type=int, default=10)
    parser.add_argument("--memory-budget-mib", type=float, default=2048, help="container memory for the estimate")
    parser.add_argument("--fault-rounds", type=int, default=3, help="pause and stall rounds (0: none)")
    parser.add_argument("--fault-sessions", type=int, default=6)
    parser.add_argument("--faults-only", action="store_true", help="only the pause/stall figures")
    args = parser.parse_args()
    if args.faults_only:
        fault_figures(args.fault_rounds, args.fault_sessions)
        return 0

    os.environ.update(STAGE="test", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", COMMAND_TIMEOUT_SECONDS="20")
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    from local_gateway import provision

    provision.ensure_all()
    fleet = Fleet(os.environ["AWS_ENDPOINT_URL"], tempfile.mkdtemp(prefix="bench-neonize-"))
    try:
        sim = sim_sessions(fleet, args.sim_sessions, "sim")
        sim_per = (sim["loaded_rss"] - sim["idle_rss"]) / args.sim_sessions
        lat, quiet = sim["latencies"] or sim["quiet"], sim["quiet"]
        print(f"sim host: idle {sim['idle_rss']:.1f} MiB, with {args.sim_sessions} logged-in sessions "
              f"{sim['loaded_rss']:.1f} MiB -> {sim_per * 1024:.0f} KiB per idle session")
        print(f"sim connect -> QR stored, one at a time: p50 {statistics.median(quiet):.1f} ms over {len(quiet)}; "
              f"8 concurrent: p50 {statistics.median(lat):.1f} ms, "
              f"p95 {sorted(lat)[int(0.95 * (len(lat) - 1))]:.1f} ms "
              f"over {len(lat)} (HTTP->bus->SQS FIFO->host->reply item, on moto)")
        cpu_per = sim["cpu_share"] / args.sim_sessions
        print(f"sim host idle CPU with {args.sim_sessions} sessions: {100 * sim['cpu_share']:.2f} % of one core "
              f"(heartbeat, adoption scan, command queue polling)")
        sim["host"][0].kill()
        sim["host"][0].wait(10)
        retire("sim-")

        nz = neonize_sessions(fleet, args.neonize_sessions, args.neonize_workers)
        retire("nz-")
        nz_per = (nz["loaded_rss"] - nz["idle_rss"]) / args.neonize_sessions
        print(f"neonize host ({args.neonize_workers} workers): idle {nz['idle_rss']:.1f} MiB, with "
              f"{args.neonize_sessions} offline clients {nz['loaded_rss']:.1f} MiB -> {nz_per * 1024:.0f} KiB "
              f"per client (a logged-in client needs more: Signal sessions, app state; measure in staging)")
        budget = args.memory_budget_mib - nz["idle_rss"]
        mem_bound = int(budget / nz_per) if nz_per > 0 else 0
        cpu_bound = int(1.0 / cpu_per) if cpu_per > 0 else 0
        print(f"sessions per host at {args.memory_budget_mib:.0f} MiB and 1 vCPU: memory bound ~{mem_bound} "
              f"(neonize, offline figure), CPU bound ~{cpu_bound} (sim idle), so ~{min(mem_bound, cpu_bound)}; "
              f"HOST_CAPACITY default 200 leaves headroom for live traffic")

        rounds = [failover_round(fleet, r, args.failover_sessions) for r in range(args.failover_rounds)]
        print(f"failover after SIGKILL ({args.failover_sessions} sessions, heartbeat 1 s, lease 4 s): "
              f"median {statistics.median(rounds):.2f} s over {len(rounds)} rounds "
              f"({', '.join(f'{r:.2f}' for r in rounds)}); ratio to the lease {statistics.median(rounds) / 4:.2f}")
        if args.fault_rounds:
            fault_figures(args.fault_rounds, args.fault_sessions)
    finally:
        fleet.stop_all()
        server.stop()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
