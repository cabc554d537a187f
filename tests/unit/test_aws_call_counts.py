"""AWS calls per operation, counted (deterministic), never timed: live-state reads are one read."""

from __future__ import annotations

import time

from local_gateway.aws_calls import count_aws_calls
from tests.conftest import ADMIN

TOKEN = "status-token"


def _connected_session(host_id: str = "host-a", heartbeat_at: float | None = None):
    from chalicelib.core.models import HostModel, SessionModel

    HostModel(host_id, command_queue_url="http://queue", capacity=10, load=1,
              heartbeat_at=time.time() if heartbeat_at is None else heartbeat_at, started_at=time.time()).save()
    session = SessionModel.get(TOKEN)
    session.update(actions=[SessionModel.owner_host.set(host_id), SessionModel.connected.set(True),
                            SessionModel.logged_in.set(False), SessionModel.qr_code.set("data:image/png;base64,AA==")])


def test_status_and_qr_of_a_connected_session_are_one_getitem_each(client):
    client.init("S", TOKEN)
    _connected_session()
    headers = {"token": TOKEN}
    assert client.get("/session/status", headers=headers).json_body["data"]["Connected"] is True  # warms the host
    with count_aws_calls() as calls:
        status = client.get("/session/status", headers=headers)
    assert status.json_body["data"]["Connected"] is True
    assert dict(calls) == {("dynamodb", "GetItem"): 1}  # the session (auth); the host row is cached
    with count_aws_calls() as calls:
        qr = client.get("/session/qr", headers=headers)
    assert qr.json_body["data"]["QRCode"].startswith("data:image/png")
    assert dict(calls) == {("dynamodb", "GetItem"): 1}


def test_cached_host_liveness_is_bounded(aws):
    """The cache never makes a dead host look live longer than the lease, nor a beating host dead."""
    from chalicelib import sessions
    from chalicelib.bus import Bus
    from chalicelib.core.models import HostModel, SessionModel
    from chalicelib.core.settings import Settings

    now = [1_000_000.0]
    bus = Bus(settings=Settings(stage="test", host_cache_seconds=60), clock=lambda: now[0])
    assert bus.settings.host_cache_ttl == 10.0  # capped: lease 15 - heartbeat 5
    sessions.create_session("S", TOKEN, "Chrome")
    _connected_session(heartbeat_at=now[0])
    session = SessionModel.get(TOKEN)
    assert bus.live_owner(session) is not None

    # The host beats on schedule: the cached row is at most ttl + heartbeat old, still within the lease.
    now[0] += 9
    HostModel("host-a").update(actions=[HostModel.heartbeat_at.set(now[0] - 4)])
    assert bus.live_owner(session) is not None
    # A late heartbeat (the cached row is past the lease, the real one is not): read again, still live.
    HostModel("host-a").update(actions=[HostModel.heartbeat_at.set(now[0] - 14)])
    bus.host("host-a", fresh=True)
    HostModel("host-a").update(actions=[HostModel.heartbeat_at.set(now[0])])
    now[0] += 2
    with count_aws_calls() as calls:
        assert bus.live_owner(session) is not None
    assert dict(calls) == {("dynamodb", "GetItem"): 1}
    # It stops beating: dead once its last heartbeat is older than the lease, cache or not.
    now[0] += 16
    assert bus.live_owner(session) is None


def test_connected_session_status_envelope_unchanged(client):
    client.init("S", TOKEN)
    _connected_session()
    data = client.get("/session/status", headers={"token": TOKEN}).json_body["data"]
    assert data["Connected"] is True and data["LoggedIn"] is False
    assert client.get("/session/all", headers=ADMIN).status_code == 200


def test_transactions_share_one_botocore_client(aws, monkeypatch):
    """Every DynamoDB transaction (send claims, fenced replies, session creation) goes through the
    process's one pynamodb Connection: a client per transaction cost ~5-15 ms each on the send path
    (and, on ECS, a credentials request)."""
    import botocore.session

    from chalicelib.core import outbox
    from chalicelib.core.models import MessageModel, SessionModel

    SessionModel("fenced", id=1, name="fenced").save()
    made: list[str] = []
    create_client = botocore.session.Session.create_client

    def counting(self, service_name, *args, **kwargs):
        made.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    fence = SessionModel.token.exists()
    for n in range(3):
        claim = MessageModel("fenced", f"m{n}", kind="text", to="x", status="sending", rank=0, updated_at=0)
        assert outbox._claim(claim, fence) is True
    assert made.count("dynamodb") <= 1
