"""Every path that sets subscriptions shares one parser and one default (issue 14, item 1).

The paths, found by grepping for writes of `SessionModel.events`: /session/connect and /session/pair
(the API decides what to send), and the host's start of a session (a restore passes none; see
tests/host/test_lifecycle_exits.py). The same `Subscribe` gives the same subscription on both routes.
"""

from __future__ import annotations

import pytest

from chalicelib.core import ops

TOKEN = "subs-token"
FORMS = [
    (["Message", "readreceipt"], ["Message", "ReadReceipt"]),
    ("message, LoggedOut", ["Message", "LoggedOut"]),
    ([], ["All"]),
    ("", ["All"]),
    (["NoSuchType"], ["All"]),
    (["All", "Message"], ["All", "Message"]),
]


@pytest.fixture
def commands(client, monkeypatch):
    from chalicelib.routes import session

    sent: list[ops.Args] = []

    class Bus:
        def command(self, session_row, operation, args, **kwargs):
            sent.append(args)
            if operation is ops.PAIR:
                return {"LinkingCode": "ABCD-EFGH"}
            return {"jid": "", "connected": True, "logged_in": False}

    monkeypatch.setattr(session, "get_bus", lambda: Bus())
    client.init("subs", TOKEN)
    return sent


ROUTES = {"/session/connect": {}, "/session/pair": {"Phone": "15550008888"}}


@pytest.mark.parametrize("given,expected", FORMS)
def test_both_routes_parse_subscribe_the_same_way(client, commands, given, expected):
    for path, body in ROUTES.items():
        response = client.post(path, {**body, "Subscribe": given}, headers={"token": TOKEN})
        assert response.status_code == 200, (path, response.json_body)
        assert commands[-1].events == expected, path


def test_omitted_subscribe_is_all_for_a_new_session_on_both_routes(client, commands):
    """The field report: a session paired by code had `[]` and got no webhooks at all."""
    for path, body in ROUTES.items():
        assert client.post(path, body, headers={"token": TOKEN}).status_code == 200
        assert commands[-1].events == ["All"], path


def test_pair_without_subscribe_keeps_what_is_stored(client, commands):
    from chalicelib.core.models import SessionModel

    SessionModel(TOKEN).update(actions=[SessionModel.events.set(["Message"])])
    assert client.post("/session/pair", ROUTES["/session/pair"], headers={"token": TOKEN}).status_code == 200
    assert commands[-1].events == ["Message"]
    connected = client.post("/session/connect", {}, headers={"token": TOKEN})  # WaGo: connect {} means All
    assert commands[-1].events == ["All"] and connected.json_body["data"]["events"] == "All"


def test_connect_on_a_running_client_answers_its_state(client, monkeypatch):
    from chalicelib.routes import session

    class Bus:
        def command(self, session_row, operation, args, **kwargs):
            return {"jid": "", "connected": True, "logged_in": False, "already_connected": True}

    monkeypatch.setattr(session, "get_bus", lambda: Bus())
    client.init("subs", TOKEN)
    response = client.post("/session/connect", {"Subscribe": "Message"}, headers={"token": TOKEN})
    assert response.status_code == 200
    assert response.json_body["data"] == {"details": "Already Connected", "webhook": "", "jid": "",
                                          "events": "Message", "connected": True, "loggedIn": False}
