"""Call routes on the Chalice test client: registry reads, every bad input, the call page."""

from __future__ import annotations

import json

import pytest

H = {"token": "ctoken"}


def _body(response):
    return json.loads(response.body)


@pytest.fixture
def session(client):
    assert client.init("C", "ctoken").status_code == 200
    return client


def test_status_lists_only_this_sessions_calls(session):
    from chalicelib.core.calls.registry import CallRegistry

    assert _body(session.get("/call/status", headers=H)) == {"code": 200, "data": {"calls": []}, "success": True}
    registry = CallRegistry()
    registry.open("ctoken", "CALL1", "15550001@s.whatsapp.net", "incoming")
    registry.open("other", "CALL2", "x", "incoming")
    calls = _body(session.get("/call/status", headers=H))["data"]["calls"]
    assert [(c["CallID"], c["State"], c["Direction"], c["WebRTC"]) for c in calls] == [
        ("CALL1", "ringing", "incoming", "none")]
    one = _body(session.get("/call/status?callID=CALL1", headers=H))["data"]["call"]
    assert one["Peer"] == "15550001@s.whatsapp.net"
    missing = session.get("/call/status?callID=CALL2", headers=H)  # another session's call
    assert (missing.status_code, _body(missing)["error"]) == (404, "call not found")
    assert session.get("/call/status").status_code == 401


@pytest.mark.parametrize("path", ["/call/accept", "/call/reject", "/call/end", "/call/audio/stop"])
def test_call_id_is_required_and_must_be_tracked(session, path):
    for body in ({}, {"CallID": ""}, {"callid": "   "}):
        response = session.post(path, body, headers=H)
        assert (response.status_code, _body(response)["error"]) == (400, "missing CallID in payload")
    response = session.post(path, {"CallID": "UNKNOWN"}, headers=H)
    assert (response.status_code, _body(response)) == (404, {"code": 404, "error": "call not found", "success": False})
    response = session.post(path, {"CallID": 5}, headers=H)
    assert response.status_code == 400
    assert _body(response)["error"] == "Could not decode Payload: CallID must be a string"
    assert session.post(path, raw="{", headers=H).status_code == 400


def test_tracked_call_goes_to_the_host(session):
    from chalicelib.core.calls.registry import CallRegistry

    CallRegistry().open("ctoken", "CALL1", "p", "incoming")
    # No host holds the session: WaGo's `No session`, after the registry check passed.
    response = session.post("/call/accept", {"callid": "CALL1"}, headers=H)
    assert (response.status_code, _body(response)["error"]) == (500, "No session")


def test_make_call_bad_inputs(session):
    response = session.post("/call/make", {}, headers=H)
    assert (response.status_code, _body(response)["error"]) == (400, "Missing Phone in Payload")
    response = session.post("/call/make", {"Phone": 123}, headers=H)
    assert _body(response)["error"] == "Could not decode Payload: Phone must be a string"
    response = session.post("/call/make", {"Phone": "155500", "Video": True}, headers=H)
    assert (response.status_code, _body(response)["error"]) == (400, "video calls are not supported")
    response = session.post("/call/make", {"Phone": "155500"}, headers=H)
    assert (response.status_code, _body(response)["error"]) == (500, "No session")


def test_webrtc_offer_bad_inputs(session):
    from chalicelib.core.calls.registry import CallRegistry

    ok = {"callID": "CALL1", "type": "offer", "sdp": "v=0\r\n"}
    for body, status, error in [
        ({**ok, "callID": ""}, 400, "missing CallID in payload"),
        ({"type": "offer", "sdp": "v=0"}, 400, "missing CallID in payload"),
        ({**ok, "type": "answer"}, 400, None),
        ({"callID": "CALL1", "sdp": "v=0"}, 400, "Missing type in Payload"),
        ({"callID": "CALL1", "type": "offer"}, 400, "Missing sdp in Payload"),
        ({**ok, "sdp": ""}, 400, "Missing sdp in Payload"),
        ({**ok, "sdp": 7}, 400, "Could not decode Payload: sdp must be a string"),
        (ok, 404, "call not found"),
    ]:
        response = session.post("/call/webrtc/offer", body, headers=H)
        assert response.status_code == status, (body, response.body)
        if error:
            assert _body(response)["error"] == error
        else:
            assert _body(response)["error"].startswith("Invalid type in Payload")
    CallRegistry().open("ctoken", "CALL1", "p", "incoming")
    response = session.post("/call/webrtc/offer", {**ok, "Type": "OFFER"}, headers=H)
    assert (response.status_code, _body(response)["error"]) == (500, "No session")


def test_play_bad_inputs(session):
    from chalicelib.core.calls.registry import CallRegistry

    response = session.post("/call/audio/play", {"AudioFile": "/tmp/x.wav"}, headers=H)
    assert (response.status_code, _body(response)["error"]) == (400, "missing CallID in payload")
    response = session.post("/call/audio/play", {"CallID": "C"}, headers=H)
    assert (response.status_code, _body(response)["error"]) == (400, "Missing AudioFile in Payload")
    response = session.post("/call/audio/play", {"CallID": "C", "AudioFile": "/tmp/x.wav"}, headers=H)
    assert response.status_code == 404
    both = {"CallID": "C", "AudioFile": "x.wav", "MediaKey": "media/up/x/y"}
    response = session.post("/call/audio/play", both, headers=H)
    assert (response.status_code, _body(response)["error"]) == (
        400, "Invalid AudioFile in Payload: give AudioFile or MediaKey, not both")
    CallRegistry().open("ctoken", "CALL2", "p", "incoming")
    response = session.post("/call/audio/play", {"CallID": "CALL2", "MediaKey": "media/up/someone-else/clip"},
                            headers=H)
    assert (response.status_code, _body(response)["error"]) == (403, "MediaKey does not belong to this session")


def test_webrtc_config_without_servers(session):
    data = _body(session.get("/call/webrtc/config", headers=H))["data"]
    assert data["iceServers"] == [] and data["turn"] == {"enabled": False, "status": "disabled"}
    assert data["gatherTimeoutMs"] > 0
    assert session.get("/call/webrtc/config").status_code == 401


def test_call_page_is_public_html_without_tokens(client):
    response = client.get("/call/page")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.body.decode()
    assert "qwert" not in page and "admintoken" not in page.lower()
    assert "/call/webrtc/offer" in page and "/call/webrtc/config" in page
