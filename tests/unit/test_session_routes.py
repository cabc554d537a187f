"""Session routes on the Chalice test client: reads from DynamoDB, body rules, sim controls absent."""

from __future__ import annotations

import json
import time

from tests.conftest import ADMIN


def _body(response):
    return json.loads(response.body)


def test_status_and_qr_are_table_reads(client):
    from chalicelib.core.models import HostModel, SessionModel

    client.init("A", "atoken")
    status = _body(client.get("/session/status", headers={"token": "atoken"}))["data"]
    assert status == {"Connected": False, "LoggedIn": False, "Jid": {"User": "", "Server": ""}, "Events": "",
                      "PushName": "", "LastError": ""}
    assert _body(client.get("/session/qr", headers={"token": "atoken"}))["error"] == "No session"

    # What a host writes is what the API reads, provided the host's heartbeat is fresh.
    HostModel("h", command_queue_url="q", capacity=5, load=1, heartbeat_at=time.time(), status="up").save()
    SessionModel("atoken").update(actions=[
        SessionModel.owner_host.set("h"), SessionModel.connected.set(True), SessionModel.logged_in.set(True),
        SessionModel.jid.set("5511999999999:7@s.whatsapp.net"), SessionModel.events.set(["Message", "Call"]),
        SessionModel.push_name.set("Ana"),
    ])
    status = _body(client.get("/session/status", headers={"token": "atoken"}))["data"]
    assert status == {"Connected": True, "LoggedIn": True, "Jid": {"User": "5511999999999", "Server": "s.whatsapp.net"},
                      "Events": "Message,Call", "PushName": "Ana", "LastError": ""}
    assert _body(client.get("/session/qr", headers={"token": "atoken"}))["error"] == "Already Logged in"

    HostModel("h").update(actions=[HostModel.heartbeat_at.set(time.time() - 3600)])  # the host died
    # (A real heartbeat only moves forward; rewriting it backwards is seen once the API's cached host row
    # expires, HOST_CACHE_SECONDS: expire it now. test_aws_call_counts checks the cache's bound.)
    from chalicelib.bus import forget_hosts

    forget_hosts()
    status = _body(client.get("/session/status", headers={"token": "atoken"}))["data"]
    assert (status["Connected"], status["LoggedIn"]) == (False, False)


def test_qr_of_a_connected_unpaired_session(client):
    from chalicelib.core.models import HostModel, SessionModel

    client.init("B", "btoken")
    HostModel("h", command_queue_url="q", capacity=5, heartbeat_at=time.time(), status="up").save()
    SessionModel("btoken").update(actions=[SessionModel.owner_host.set("h")])
    assert _body(client.get("/session/qr", headers={"token": "btoken"}))["error"] == "Not connected"
    SessionModel("btoken").update(actions=[SessionModel.connected.set(True),
                                           SessionModel.qr_code.set("data:image/png;base64,AAAA")])
    assert _body(client.get("/session/qr", headers={"token": "btoken"})) == {
        "code": 200, "data": {"QRCode": "data:image/png;base64,AAAA"}, "success": True}


def test_body_rules(client):
    client.init("C", "ctoken")
    bad = client.post("/session/connect", {"Subscribe": 5}, headers={"token": "ctoken"})
    assert bad.status_code == 400 and "Subscribe" in _body(bad)["error"]
    assert _body(client.post("/session/pair", {}, headers={"token": "ctoken"}))["error"] == "Missing Phone in Payload"
    # No host runs in this test: a connect that needs one says so in WaGo's envelope.
    none = client.post("/session/connect", {"subscribe": ["message"]}, headers={"token": "ctoken"})
    assert (none.status_code, _body(none)["error"]) == (503, "no session host available")
    assert client.post("/session/connect", {}, headers={"token": "nope"}).status_code == 401


def test_sim_controls_do_not_exist_without_the_sim_driver(client):
    from app import app, openapi, settings

    assert settings.whatsapp_driver == "neonize"
    sim_views = {entry.view_name for path, methods in app.routes.items() if path.startswith("/sim")
                 for entry in methods.values()}
    assert sim_views and all(name.startswith("unavailable_") for name in sim_views)  # only the explanation
    assert not [path for path in openapi()["paths"] if path.startswith("/sim")]
    response = client.post("/sim/scan", {"Token": "x", "Phone": "15550001111"}, headers=ADMIN)
    assert response.status_code == 404
    assert "exist only with WHATSAPP_DRIVER=sim" in response.json_body["error"]


def test_status_jid_is_whatsmeows_jid_without_agent_and_device():
    """/session/status's `Jid` ({User, Server}) comes from chalicelib/core/jid.py's parser, the one every
    other address field uses."""
    from chalicelib.routes.session import status_jid

    cases = {"5511999999999:7@s.whatsapp.net": ("5511999999999", "s.whatsapp.net"),
             "5511999999999@s.whatsapp.net": ("5511999999999", "s.whatsapp.net"),
             "123456789012345.0:3@lid": ("123456789012345", "lid"), None: ("", ""), "": ("", "")}
    for stored, (user, server) in cases.items():
        assert status_jid(stored).model_dump(by_alias=True) == {"User": user, "Server": server}
