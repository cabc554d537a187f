"""POST /session/init, GET /session/all, POST /session/scanned, POST /session/delete."""

from __future__ import annotations

from chalicelib.core.models import SessionModel, SessionNameModel
from tests.conftest import ADMIN


def test_init_returns_wago_envelope_and_strips_token_spaces(client):
    response = client.init("JohnDoe", " very hard token ")
    assert response.status_code == 200
    assert response.json_body == {
        "code": 200,
        "success": True,
        "data": {"details": "user created successfully", "id": 1, "name": "JohnDoe",
                 "token": "veryhardtoken", "osName": "Chrome"},
    }
    assert SessionModel.get("veryhardtoken").name == "JohnDoe"


def test_init_accepts_keys_in_any_case_and_form_content_type(client):
    # curl -d sends application/x-www-form-urlencoded; WaGo's own examples do exactly that.
    response = client.post(
        "/session/init", raw='{"name":"a","TOKEN":"t1","os":"Linux"}',
        headers={**ADMIN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.json_body
    assert response.json_body["data"]["token"] == "t1"


def test_ids_increase(client):
    assert client.init("a", "t1").json_body["data"]["id"] == 1
    assert client.init("b", "t2").json_body["data"]["id"] == 2


def test_duplicate_name_or_token_is_refused_and_writes_nothing(client):
    assert client.init("alice", "tok-a").status_code == 200

    dup_name = client.init("alice", "tok-b")
    assert dup_name.status_code == 409
    assert dup_name.json_body == {"code": 409, "error": "Name already exists: alice", "success": False}
    assert not SessionModel.count("tok-b")

    dup_token = client.init("bob", "tok-a")
    assert dup_token.status_code == 409
    assert dup_token.json_body["error"] == "Token already exists"
    assert not SessionNameModel.count("bob")
    assert SessionModel.get("tok-a").name == "alice"


def test_admin_routes_need_the_admin_token(client):
    for method, path in (("POST", "/session/init"), ("GET", "/session/all"), ("POST", "/session/scanned"),
                         ("POST", "/session/delete")):
        for headers in ({}, {"admintoken": "wrong"}):
            response = client.request(method, path, headers=headers, body="{}")
            assert response.status_code == 401, (method, path)
            assert response.json_body == {"code": 401, "error": "invalid admin token", "success": False}


def test_list_and_scanned(client):
    client.init("a", "t1")
    client.init("b", "t2")
    SessionModel.get("t2").update(actions=[SessionModel.jid.set("5511999999999@s.whatsapp.net")])

    rows = client.get("/session/all", headers=ADMIN).json_body["data"]
    assert [r["token"] for r in rows] == ["t1", "t2"]
    assert rows[0] == {"id": 1, "name": "a", "token": "t1", "osName": "Chrome", "webhook": "", "jid": "",
                       "connected": False, "loggedIn": False, "events": "",
                       "pushName": "", "ownerHost": "", "lastError": ""}

    scanned = client.post("/session/scanned", headers=ADMIN).json_body["data"]
    assert [r["token"] for r in scanned] == ["t2"]


def test_delete_needs_admin_and_target_token_and_frees_the_name(client):
    client.init("a", "t1")
    assert client.post("/session/delete", headers={"token": "t1"}).status_code == 401
    missing = client.post("/session/delete", headers=ADMIN)
    assert missing.status_code == 401 and missing.json_body["error"] == "Unauthorized"
    unknown = client.post("/session/delete", headers={**ADMIN, "token": "nope"})
    assert unknown.status_code == 401 and unknown.json_body["error"] == "invalid token"

    deleted = client.post("/session/delete", headers={**ADMIN, "token": "t1"})
    assert deleted.status_code == 200
    assert deleted.json_body["data"] == {"details": "session deleted successfully", "token": "t1"}
    assert not SessionModel.count("t1") and not SessionNameModel.count("a")
    assert client.init("a", "t2").status_code == 200
