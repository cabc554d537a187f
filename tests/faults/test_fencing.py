"""Fencing under faults, with three session hosts as separate processes against a moto server process:
a host paused past its lease (SIGSTOP, then SIGCONT) and a frozen AWS endpoint (SIGSTOP of moto), while
every session keeps sending with fresh Ids. After the fault, no command runs for a session on a host
that does not hold it under its final epoch, and no session ever has clients on two hosts, counted from
each host's own report. Every log line the processes wrote is then grepped for the secrets used."""

from __future__ import annotations

import collections
import threading
import time
import uuid

import httpx
import pytest

from chalicelib.core.redact import fingerprint
from tests.faults.cluster import FAST, Cluster, wait_for

pytestmark = pytest.mark.integration

LEASE = float(FAST["HOST_LEASE_SECONDS"])
MARGIN = float(FAST["HOST_LEASE_MARGIN_SECONDS"])
HEARTBEAT = float(FAST["HOST_HEARTBEAT_SECONDS"])
FAULT_SECONDS = LEASE + MARGIN + 2 * HEARTBEAT + 1.5  # long enough for the others to adopt
WEBHOOK_SECRET = "whsec-" + uuid.uuid4().hex
TURN_CREDENTIAL = "turncred-" + uuid.uuid4().hex


@pytest.fixture
def cluster(tmp_path):
    running = Cluster(tmp_path, hosts=3, env={"TURN_URLS": "turn:127.0.0.1:3478", "TURN_USERNAME": "wago",
                                              "TURN_CREDENTIAL": TURN_CREDENTIAL})
    try:
        running.start()
        yield running
    finally:
        running.close()
    _assert_no_secret_in_logs(tmp_path, running.secrets)


def _assert_no_secret_in_logs(workdir, secrets: list[str]) -> None:
    """No token, webhook secret or TURN credential in any line any process wrote."""
    leaks = []
    for log in sorted(workdir.glob("*.log")):
        text = log.read_text(errors="replace")
        leaks += [(log.name, secret) for secret in secrets if secret in text]
        assert text.strip(), f"{log.name} is empty: the grep would prove nothing"
    assert leaks == []


def _sessions(cluster: Cluster, count: int = 6) -> tuple[list[str], list[str]]:
    run = uuid.uuid4().hex[:8]
    tokens = [f"tok-{run}-{i}" for i in range(count)]
    phones = [f"1555{int(run[:6], 16) % 1000:03d}{i:04d}" for i in range(count)]
    cluster.secrets = [*tokens, WEBHOOK_SECRET, TURN_CREDENTIAL]
    cluster.linked_sessions(tokens, phones)
    cluster.ok("/webhook", tokens[0], {"WebhookURL": "http://127.0.0.1:9/hook", "Secret": WEBHOOK_SECRET})
    config = cluster.api.get("/call/webrtc/config", headers={"token": tokens[0]}).json()["data"]
    assert TURN_CREDENTIAL in str(config)  # the credential is in use (and must still stay out of the logs)
    spread = collections.Counter(cluster.session_row(t)["owner_host"] for t in tokens)
    assert len(spread) >= 2, f"placement should spread sessions over the hosts: {spread}"
    return tokens, phones


class Sender:
    """Each session sends to the next one's phone with a fresh Id, about three times a second."""

    def __init__(self, cluster: Cluster, tokens: list[str], phones: list[str], max_seconds: float = 60):
        self.cluster, self.tokens, self.phones = cluster, tokens, phones
        self.stop_flag = threading.Event()
        self.max_seconds = max_seconds
        self.results: list[tuple[str, str, int, float]] = []  # token, id, status, answered at
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(len(tokens))]

    def start(self) -> Sender:
        for thread in self.threads:
            thread.start()
        return self

    def _loop(self, index: int) -> None:
        token, to = self.tokens[index], self.phones[(index + 1) % len(self.phones)]
        ends = time.monotonic() + self.max_seconds
        while not self.stop_flag.is_set() and time.monotonic() < ends:
            message_id = "3EB0" + uuid.uuid4().hex[:16].upper()
            try:
                status = self.cluster.call("/send/text", token, {"Phone": to, "Body": "tick", "Id": message_id},
                                           timeout=20).status_code
            except httpx.HTTPError:  # the endpoint frozen longer than the client waits
                status = 0
            self.results.append((token, message_id, status, time.time()))
            self.stop_flag.wait(0.3)

    def stop(self) -> None:
        self.stop_flag.set()
        for thread in self.threads:
            thread.join(timeout=30)


class ClientSampler:
    """Samples every host's own report from `since` on: the most hosts ever seen holding one session."""

    def __init__(self, cluster: Cluster, since: float):
        self.cluster, self.since = cluster, since
        self.most: collections.Counter = collections.Counter()
        self.samples = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        ends = time.monotonic() + 60
        while not self.stop_flag.wait(0.1) and time.monotonic() < ends:
            holders: collections.Counter = collections.Counter()
            for index in self.cluster.hosts:
                report = self.cluster.report(index)
                if report and report["ts"] > self.since:  # only what a host said after the fault
                    holders.update(report["clients"])
            for token, count in holders.items():
                self.most[token] = max(self.most[token], count)
            self.samples += 1

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(timeout=5)


def _settled(cluster: Cluster, tokens: list[str], since: float) -> dict[str, list[str]]:
    """Wait until every session has exactly one client, from the hosts' own reports."""
    def one_each():
        holders = cluster.clients_per_session(time.time())
        return all(len(holders.get(t, [])) == 1 for t in tokens) and holders

    return wait_for(one_each, 40, "exactly one client per session")


def _commands_after(cluster: Cluster, since: float) -> list[tuple[str, str, int]]:
    """(host id, token fingerprint, epoch) of every command a host started after `since`."""
    started = []
    for index in cluster.hosts:
        host_id = cluster.host_id(index)
        for line in cluster.log_lines(index):
            if line.get("message") == "command started" and float(line.get("ts", 0)) > since:
                started.append((host_id, line["token"], int(line["epoch"])))
    return started


def _assert_fenced(cluster: Cluster, tokens: list[str], since: float) -> None:
    """After the fault, a command ran only on a session's final owner, under its final epoch."""
    final = {fingerprint(t): (cluster.session_row(t)["owner_host"], int(cluster.session_row(t)["epoch"]))
             for t in tokens}
    started = [c for c in _commands_after(cluster, since) if c[1] in final]
    assert started, "the send loop should have run commands after the fault"
    strays = [c for c in started if (c[0], c[2]) != final[c[1]]]
    assert strays == []


def test_a_paused_host_resumes_without_driving_the_sessions_it_lost(cluster):
    tokens, phones = _sessions(cluster)
    owners = {t: cluster.session_row(t)["owner_host"] for t in tokens}
    victim_id = collections.Counter(owners.values()).most_common(1)[0][0]
    victim = cluster.index_of(victim_id)
    held_by_victim = [t for t in tokens if owners[t] == victim_id]
    sender = Sender(cluster, tokens, phones).start()
    time.sleep(1.5)

    cluster.pause(f"host-{victim}")
    time.sleep(FAULT_SECONDS)
    moved = {t: cluster.session_row(t)["owner_host"] for t in held_by_victim}
    assert victim_id not in moved.values(), f"the other hosts should have adopted the sessions: {moved}"
    resumed_at = time.time()
    sampler = ClientSampler(cluster, resumed_at)
    cluster.resume(f"host-{victim}")
    time.sleep(4)
    sender.stop()

    holders = _settled(cluster, tokens, resumed_at)
    sampler.stop()
    assert sampler.samples > 10 and max(sampler.most.values(), default=0) <= 1, sampler.most
    assert all(victim_id not in holders[t] for t in held_by_victim)
    # Nothing ran on the resumed host for a session it lost: not even what it had received before the pause.
    lost = {fingerprint(t) for t in held_by_victim}
    assert [c for c in _commands_after(cluster, resumed_at) if c[0] == victim_id and c[1] in lost] == []
    _assert_fenced(cluster, tokens, resumed_at)
    fenced = [line for line in cluster.log_lines(victim) if str(line.get("message")).startswith("fencing: ")]
    assert fenced and float(fenced[-1]["ts"]) >= resumed_at
    served = {token for token, _, status, at in sender.results if at > resumed_at + 2 and status == 200}
    assert served == set(tokens)  # and the gateway serves every session again


def test_a_frozen_aws_endpoint_leaves_one_client_per_session(cluster):
    tokens, phones = _sessions(cluster)
    sender = Sender(cluster, tokens, phones).start()
    time.sleep(1.5)

    cluster.pause("moto")  # every AWS call of every process hangs; none fails
    time.sleep(FAULT_SECONDS)
    thawed_at = time.time()
    sampler = ClientSampler(cluster, thawed_at)
    cluster.resume("moto")
    time.sleep(6)
    sender.stop()

    _settled(cluster, tokens, thawed_at)
    sampler.stop()
    assert sampler.samples > 10 and max(sampler.most.values(), default=0) <= 1, sampler.most
    _assert_fenced(cluster, tokens, thawed_at)
    fences = [line for i in cluster.hosts for line in cluster.log_lines(i)
              if str(line.get("message")).startswith("fencing: ")]
    assert len(fences) >= len(cluster.hosts)  # every host stopped its clients at its own deadline
