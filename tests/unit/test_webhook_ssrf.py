"""SSRF guard: refused at POST /webhook and, after resolution, at delivery. No DNS beyond localhost."""

from __future__ import annotations

import ipaddress

import pytest

from chalicelib.core.models import DeliveryModel, SessionModel
from chalicelib.core.ssrf import BlockedDestination, Guard, literal_address
from tests.unit.webhook_helpers import Receiver, make_session, pump, settings_env, stack, wire_event

__all__ = ["stack"]

STRICT = Guard(allow_loopback=False)
REFUSED = {
    "http://127.0.0.1:8080/hook": "127.0.0.1 is a loopback address",
    "http://127.8.9.10/hook": "127.8.9.10 is a loopback address",
    "http://[::1]:9000/": "::1 is a loopback address",
    "http://localhost:8080/": "localhost is a loopback address",
    "http://api.localhost/": "api.localhost is a loopback address",
    "http://10.1.2.3/": "10.1.2.3 is a private address",
    "http://192.168.0.10/": "192.168.0.10 is a private address",
    "http://172.16.5.4/": "172.16.5.4 is a private address",
    "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a cloud metadata address",
    "http://[fd00:ec2::254]/": "fd00:ec2::254 is a cloud metadata address",
    "http://metadata.google.internal/": "metadata.google.internal is a cloud metadata address",
    "http://169.254.10.1/": "169.254.10.1 is a link-local address",
    "http://[fe80::1]/": "fe80::1 is a link-local address",
    "http://0.0.0.0/": "0.0.0.0 is an unspecified address",
    "http://2130706433/": "2130706433 is a loopback address",  # 127.0.0.1 as one number
    "http://0x7f.1/": "0x7f.1 is a loopback address",
    "http://[::ffff:127.0.0.1]/": "::ffff:127.0.0.1 is a loopback address",
    "http://100.64.1.1/": "100.64.1.1 is a shared (carrier-grade NAT) address",
    "http://[fc00::5]/": "fc00::5 is a private address",
}


@pytest.mark.parametrize("url,reason", sorted(REFUSED.items()))
def test_set_time_check_refuses(url, reason):
    with pytest.raises(BlockedDestination) as caught:
        STRICT.check_url(url)
    assert str(caught.value) == reason


@pytest.mark.parametrize("url", ["https://example.com/hook", "http://93.184.215.14:8080/x", "https://[2606:4700::1]/"])
def test_public_destinations_pass_without_dns(url):
    STRICT.check_url(url)  # literal public addresses, and names left for delivery-time resolution


def test_delivery_time_resolution_refuses_names_resolving_to_loopback():
    with pytest.raises(BlockedDestination) as caught:
        STRICT.resolve("http://localhost:1/")
    assert "localhost is a loopback address" in str(caught.value)


def test_allow_lists():
    guard = Guard(allow_loopback=False, allowed_hosts=("hooks.internal", "*.corp.example"),
                  allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    guard.check_url("http://10.20.3.4/")
    guard.check_url("http://hooks.internal/")
    guard.check_url("http://a.b.corp.example/")
    with pytest.raises(BlockedDestination):
        guard.check_url("http://10.21.3.4/")
    loopback = Guard(allow_loopback=True)
    loopback.check_url("http://127.0.0.1:1/")
    assert loopback.resolve("http://localhost:8/").address in ("127.0.0.1", "::1")
    with pytest.raises(BlockedDestination):
        loopback.check_url("http://169.254.169.254/")  # loopback allowed does not open metadata


def test_literal_address_forms():
    assert str(literal_address("2130706433")) == "127.0.0.1"
    assert str(literal_address("0x7f.0.0.1")) == "127.0.0.1"
    assert literal_address("example.com") is None
    assert literal_address("1e100.net") is None


def test_post_webhook_refuses_with_wago_envelope(client, monkeypatch):
    settings_env(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="false")
    try:
        client.init("a", "t1")
        for url, reason in [
            ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
            ("http://10.0.0.8/hook", "10.0.0.8 is a private address"),
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
            ("http://[::1]/", "::1 is a loopback address"),
            ("http://localhost:8000/", "localhost is a loopback address"),
        ]:
            response = client.post("/webhook", {"WebhookURL": url}, headers={"token": "t1"})
            assert response.status_code == 400, url
            assert response.json_body == {
                "code": 400, "success": False,
                "error": f"Invalid WebhookURL in Payload: {reason}; webhooks may not target it",
            }
        assert SessionModel.get("t1").webhook == ""
    finally:
        monkeypatch.undo()
        from chalicelib.core.settings import get_settings

        get_settings.cache_clear()


def test_loopback_is_allowed_in_the_test_stage_by_default(client):
    client.init("a", "t1")
    response = client.post("/webhook", {"WebhookURL": "http://127.0.0.1:9/hook"}, headers={"token": "t1"})
    assert response.status_code == 200


def test_delivery_refuses_blocked_targets_and_dead_letters_them(stack, monkeypatch):
    """A URL stored before the guard tightened: refused at delivery, straight to the DLQ, logged."""
    with Receiver() as receiver:
        settings_env(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="false")
        targets = {
            "ip": receiver.url,
            "name": f"http://localhost:{receiver.port}/hook",
            "v6": f"http://[::1]:{receiver.port}/hook",
            "private": "http://10.9.9.9:80/hook",
            "metadata": "http://169.254.169.254/latest/meta-data/",
        }
        for token, url in targets.items():
            make_session(token, url)
            stack.put(wire_event(token))
        pump(lambda: stack.count(stack.dlq_url) == len(targets) and stack.count(stack.events_url) == 0, rounds=40)
    assert receiver.received == []
    assert stack.count(stack.dlq_url) == len(targets)
    errors = {token: list(DeliveryModel.query(token))[0] for token in targets}
    assert all(e.state == "failed" and e.attempts == 1 for e in errors.values())
    assert errors["ip"].last_error == "refused by the SSRF guard: 127.0.0.1 is a loopback address"
    assert errors["name"].last_error in (
        "refused by the SSRF guard: localhost is a loopback address",
    )
    assert errors["metadata"].last_error == "refused by the SSRF guard: 169.254.169.254 is a cloud metadata address"
    assert errors["private"].last_error == "refused by the SSRF guard: 10.9.9.9 is a private address"


def test_resolution_is_checked_and_pinned(monkeypatch):
    """A public-looking name whose DNS answer is private is refused after resolution (no real DNS:
    getaddrinfo is replaced); an allowed answer is pinned so no second lookup can change it."""
    import socket

    answers = {"rebind.example": ["93.184.215.14", "10.0.0.1"], "ok.example": ["93.184.215.14"]}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    STRICT.check_url("http://rebind.example/")  # set time: no lookup, passes
    with pytest.raises(BlockedDestination) as caught:
        STRICT.resolve("http://rebind.example/")
    assert str(caught.value) == "rebind.example resolves to 10.0.0.1, a private address"
    target = STRICT.resolve("https://ok.example/hook")
    assert (target.host, target.port, target.address) == ("ok.example", 443, "93.184.215.14")


def test_pinned_request_keeps_host_and_sni():
    import httpx

    from chalicelib.core.contract import WireEvent
    from chalicelib.core.ssrf import Target
    from chalicelib.webhooks.delivery import build_request

    event = WireEvent.model_validate(wire_event("t1"))
    with httpx.Client() as http:
        request = build_request(http, "https://ok.example:8443/hook?x=1", event, attempt=2, secret=None,
                                target=Target("ok.example", 8443, "93.184.215.14"))
    assert str(request.url) == "https://93.184.215.14:8443/hook?x=1"
    assert request.headers["host"] == "ok.example:8443"
    assert request.extensions["sni_hostname"] == "ok.example"


def test_one_client_per_host_name_so_pinned_connections_are_never_shared():
    from chalicelib.webhooks.delivery import ClientPool

    pool = ClientPool(max_hosts=2)
    try:
        a, b = pool.get("a.example"), pool.get("b.example")
        assert a is not b and pool.get("a.example") is a
        pool.get("c.example")  # evicts the least recently used (b)
        assert b.is_closed and not a.is_closed
    finally:
        pool.close()
