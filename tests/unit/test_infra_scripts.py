"""The code the CDK stack ships as text (infra/wago_infra/scripts.py), run on moto in-process:
the session host's container health check and the one-minute host monitor behind autoscaling and
the heartbeat alarm."""

from __future__ import annotations

import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "infra"))

from wago_infra.scripts import HEALTH_CHECK, HOST_MONITOR_CODE  # noqa: E402


def _health() -> int:
    try:
        exec(compile(HEALTH_CHECK, "<health-check>", "exec"), {})
    except SystemExit as exc:
        return int(exc.code or 0)
    raise AssertionError("the health check must exit")


def _register(host_id=None):
    from chalicelib.core.settings import get_settings
    from session_host.registry import HostRegistry

    registry = HostRegistry(get_settings(), host_id)
    registry.register()
    return registry


def test_health_check_follows_this_containers_heartbeat(aws):
    from chalicelib.core.models import HostModel

    assert _health() == 1  # not registered yet
    registry = _register()
    _register("some-other-task-1-abcdef01")
    assert _health() == 0
    HostModel(registry.host_id).update(actions=[HostModel.heartbeat_at.set(time.time() - 60)])
    assert _health() == 1  # stale lease: ECS replaces the task
    registry.heartbeat(load=3)
    assert _health() == 0


def test_host_monitor_publishes_sessions_per_host_and_heartbeat_age(aws, monkeypatch):
    from chalicelib.core.models import HostModel
    from chalicelib.core.settings import get_settings

    settings = get_settings()
    monkeypatch.setenv("HOSTS_TABLE", settings.hosts_table_name)
    monkeypatch.setenv("STAGE", "dev")
    monkeypatch.setenv("METRICS_NAMESPACE", "WaGoGateway")
    now = time.time()
    HostModel("a", capacity=200, load=30, heartbeat_at=now, status="up").save()
    HostModel("b", capacity=200, load=50, heartbeat_at=now - 2, status="up").save()
    HostModel("dead", capacity=200, load=7, heartbeat_at=now - 40, status="up").save()
    namespace: dict = {}
    exec(compile(HOST_MONITOR_CODE, "<host-monitor>", "exec"), namespace)
    out = io.StringIO()
    with redirect_stdout(out):
        values = namespace["handler"]({}, None)
    assert values["LiveHosts"] == 2 and values["StaleHosts"] == 1 and values["RegisteredHosts"] == 3
    assert values["SessionsPerHost"] == pytest.approx(40.0)
    assert values["HostUtilization"] == pytest.approx(20.0)
    assert values["MaxHeartbeatAgeSeconds"] >= 40
    emf = json.loads(out.getvalue())
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "WaGoGateway" and directive["Dimensions"] == [["Stage"]]
    assert emf["Stage"] == "dev" and emf["SessionsPerHost"] == pytest.approx(40.0)
    assert {m["Name"] for m in directive["Metrics"]} >= {"SessionsPerHost", "MaxHeartbeatAgeSeconds", "LiveHosts"}


def test_host_monitor_with_no_hosts_reports_zero_live_hosts(aws, monkeypatch):
    from chalicelib.core.settings import get_settings

    monkeypatch.setenv("HOSTS_TABLE", get_settings().hosts_table_name)
    monkeypatch.setenv("STAGE", "dev")
    monkeypatch.setenv("METRICS_NAMESPACE", "WaGoGateway")
    namespace: dict = {}
    exec(compile(HOST_MONITOR_CODE, "<host-monitor>", "exec"), namespace)
    with redirect_stdout(io.StringIO()):
        values = namespace["handler"]({}, None)
    assert values["LiveHosts"] == 0 and values["SessionsPerHost"] == 0.0
