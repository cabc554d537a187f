"""Every operation declared in the registry (chalicelib/core/ops.py) has exactly one handler on a host
assembled as `session_host/sessions.py` assembles it, for each driver; and the per-operation flags the
host reads (`sessionless`, `claiming`) come from the registry alone."""

from __future__ import annotations

import time

import boto3
import pytest

from chalicelib.core import contract, ops
from chalicelib.core.contract import Command
from chalicelib.core.errors import DomainError


def _assemble(driver_name: str, settings):
    from session_host.drivers import load_driver
    from session_host.sessions import HostSessions

    sqs = boto3.client("sqs", region_name=settings.region)
    queue_url = sqs.get_queue_url(QueueName=settings.events_queue_name)["QueueUrl"]
    return HostSessions("h1", settings, sqs, queue_url,
                        driver_factory=lambda callbacks: load_driver(driver_name, callbacks, settings))


def _check_every_operation_bound_once(running) -> None:
    assert running.dispatcher.missing() == set()
    assert set(running.dispatcher.handlers) == set(ops.OPERATIONS)
    sets = {id(handler.__self__): handler.__self__ for _, handler in running.dispatcher.handlers.values()}
    counts: dict[str, int] = {}
    for operation_set in sets.values():
        for attr in dir(type(operation_set)):
            operation = getattr(getattr(type(operation_set), attr), "__wago_operation__", None)
            if operation is not None:
                counts[operation.name] = counts.get(operation.name, 0) + 1
    assert counts == dict.fromkeys(ops.OPERATIONS, 1)
    for name, (operation, _) in running.dispatcher.handlers.items():
        assert operation is ops.OPERATIONS[name]  # the registry's own declaration, not a copy


def test_sim_host_binds_every_operation_once(aws):
    from chalicelib.core.settings import get_settings

    running = _assemble("sim", get_settings().model_copy(update={"whatsapp_driver": "sim"}))
    try:
        _check_every_operation_bound_once(running)
    finally:
        running.close()


def test_neonize_host_binds_every_operation_once(aws, tmp_path):
    from chalicelib.core.settings import get_settings

    settings = get_settings().model_copy(update={
        "whatsapp_driver": "neonize", "neonize_workers": 1, "neonize_data_dir": str(tmp_path),
        "neonize_proxy": "socks5://127.0.0.1:9", "connect_wait_seconds": 1.0})
    running = _assemble("neonize", settings)
    try:
        _check_every_operation_bound_once(running)
    finally:
        running.close()
        running.driver.close(grace=1.0)


def test_claiming_and_sessionless_flags_decide_what_runs_on_a_session_not_held(aws):
    """A claiming operation may start on a session this host does not hold yet; any other answers
    WaGo's `No session` without running; a sessionless one needs no session at all."""
    from chalicelib.core.settings import get_settings

    running = _assemble("sim", get_settings().model_copy(update={"whatsapp_driver": "sim"}))
    try:
        claiming = {op.name for op in ops.OPERATIONS.values() if op.claiming}
        assert claiming == {"connect", "pair", "forget"}
        assert not any(op.claiming and op.sessionless for op in ops.OPERATIONS.values())
        for operation in ops.OPERATIONS.values():
            command = Command(token="not-held", op=operation.name, args={}, deadline=time.time() + 30)
            if operation.claiming or operation.sessionless:
                assert running.lifecycle.may_run(command) is None
            else:
                with pytest.raises(DomainError) as raised:
                    running.lifecycle.may_run(command)
                assert (raised.value.status, raised.value.message) == (500, contract.NO_SESSION)
    finally:
        running.close()


def test_an_operation_cannot_be_both_sessionless_and_claiming():
    with pytest.raises(ValueError, match="both sessionless and claiming"):
        ops.declare("test.both", ops.NoArgs, ops.Details, sessionless=True, claiming=True)
    assert "test.both" not in ops.OPERATIONS
