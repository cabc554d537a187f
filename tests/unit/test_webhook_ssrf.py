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
    "http://[::ffff:127.0.0.1]/": "::ffff:127.0.0.1 is an address that carries 127.0.0.1, a loopback address",
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
            "badport": "http://h:abc/hook",  # stored before URLs were parsed at the API: no 8 retries
            "nat64": "http://[64:ff9b::a9fe:a9fe]/",
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
    assert errors["badport"].last_error == \
        "refused by the SSRF guard: the URL port 'abc' is not a number from 1 to 65535"
    assert errors["nat64"].last_error == ("refused by the SSRF guard: 64:ff9b::a9fe:a9fe is an address that carries "
                                          "169.254.169.254, a cloud metadata address")


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


# -- every IPv6 form that carries an IPv4 address, every non-global range (issue 14, item 12) ---------

#: One member of every IPv4 range the guard refuses, with the words it uses.
REFUSED_V4 = {
    "127.0.0.1": "a loopback address", "10.1.2.3": "a private address", "172.16.0.9": "a private address",
    "192.168.1.1": "a private address", "169.254.169.254": "a cloud metadata address",
    "169.254.7.7": "a link-local address", "100.100.100.200": "a cloud metadata address",
    "100.64.0.1": "a shared (carrier-grade NAT) address", "0.0.0.0": "an unspecified address",
    "0.1.2.3": "a 'this network' address", "192.0.0.8": "an IETF protocol assignment address",
    "192.0.2.1": "a documentation address", "198.51.100.1": "a documentation address",
    "203.0.113.1": "a documentation address", "192.88.99.1": "a deprecated 6to4 relay anycast address",
    "198.18.0.1": "a benchmarking address", "224.0.0.1": "a multicast address", "240.0.0.1": "a reserved address",
    "255.255.255.255": "a broadcast address",
}
#: One member of every IPv6 range refused on its own (not for an IPv4 address it carries).
REFUSED_V6 = {
    "::1": "a loopback address", "::": "an unspecified address", "fe80::1": "a link-local address",
    "fc00::1": "a private address", "fd12:3456::1": "a private address", "fec0::1": "a deprecated site-local address",
    "ff02::1": "a multicast address", "100::1": "a discard-only address", "100:0:0:1::1": "a dummy address",
    "2001:db8::1": "a documentation address", "3fff::1": "a documentation address",
    "2001:10::1": "an IETF protocol assignment address", "2001:2::1": "an IETF protocol assignment address",
    "5f00::1": "a segment routing (SRv6) address", "4000::1": "a reserved address",
    "64:ff9b:1::a00:1": "a local-use NAT64 address (64:ff9b:1::/48)",
    "64:ff9b:1::808:808": "a local-use NAT64 address (64:ff9b:1::/48)",
    "fd00:ec2::254": "a cloud metadata address",
}
PUBLIC_V4 = ["8.8.8.8", "93.184.215.14"]


def _hex(v4: str) -> str:
    packed = int(ipaddress.IPv4Address(v4))
    return f"{packed >> 16:x}:{packed & 0xFFFF:x}"


def _teredo(server: str, client: str) -> str:
    obfuscated = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return f"2001:0:{_hex(server)}:8000:63bf:{obfuscated >> 16:x}:{obfuscated & 0xFFFF:x}"


#: Every IPv6 spelling that carries an IPv4 address, dotted and hex where both exist.
EMBEDDINGS = {
    "mapped": lambda v4: f"::ffff:{v4}",
    "mapped (hex)": lambda v4: f"::ffff:{_hex(v4)}",
    "mapped (long)": lambda v4: f"0:0:0:0:0:ffff:{v4}",
    "compatible": lambda v4: f"::{v4}",
    "translated": lambda v4: f"::ffff:0:{v4}",
    "NAT64 well-known": lambda v4: f"64:ff9b::{v4}",
    "NAT64 well-known (hex)": lambda v4: f"64:ff9b::{_hex(v4)}",
    "6to4": lambda v4: f"2002:{_hex(v4)}::1",
    "Teredo client": lambda v4: _teredo("8.8.8.8", v4),
    "Teredo server": lambda v4: _teredo(v4, "8.8.8.8"),
}


def _embedded_cases():
    for form, build in EMBEDDINGS.items():
        for v4, reason in REFUSED_V4.items():
            if form == "compatible" and v4 == "0.0.0.0":
                continue  # ::0.0.0.0 is ::, the unspecified address (refused as such, below)
            yield form, build(v4), v4, reason


def test_the_embedding_table_covers_every_form_the_guard_knows():
    from chalicelib.core.ssrf import embedded_ipv4

    for form, build in EMBEDDINGS.items():
        ip = ipaddress.IPv6Address(build("10.1.2.3"))
        assert ipaddress.IPv4Address("10.1.2.3") in embedded_ipv4(ip), form


@pytest.mark.parametrize("form", EMBEDDINGS)
def test_every_ipv6_form_is_judged_by_the_ipv4_address_it_carries(form):
    checked = 0
    for case_form, v6, v4, reason in _embedded_cases():
        if case_form != form:
            continue
        with pytest.raises(BlockedDestination) as caught:
            STRICT.check_url(f"http://[{v6}]:8080/hook")
        assert str(caught.value) == f"{v6} is an address that carries {v4}, {reason}", (form, v6)
        checked += 1
    assert checked >= len(REFUSED_V4) - 1
    for v4 in PUBLIC_V4:  # and a public IPv4 address inside passes (the form itself is not the problem)
        STRICT.check_url(f"http://[{EMBEDDINGS[form](v4)}]/")


@pytest.mark.parametrize("v4,reason", sorted(REFUSED_V4.items()))
def test_every_non_global_ipv4_range_is_refused(v4, reason):
    with pytest.raises(BlockedDestination) as caught:
        STRICT.check_url(f"http://{v4}/")
    assert str(caught.value) == f"{v4} is {reason}"


@pytest.mark.parametrize("v6,reason", sorted(REFUSED_V6.items()))
def test_every_non_global_ipv6_range_is_refused(v6, reason):
    with pytest.raises(BlockedDestination) as caught:
        STRICT.check_url(f"http://[{v6}]/")
    assert str(caught.value) == f"{v6} is {reason}"


def test_every_range_pythons_ipaddress_calls_private_is_refused_too():
    """A cross-check against the standard library's own table (ipaddress's is_private networks)."""
    checked = 0
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        constants = cls._constants
        exceptions = getattr(constants, "_private_networks_exceptions", [])
        for net in constants._private_networks:
            sample = net.network_address + (1 if net.num_addresses > 2 else 0)
            if any(sample in allowed for allowed in exceptions):
                continue
            assert STRICT.address_problem(sample), net
            checked += 1
    assert checked >= 20


def test_delivery_and_mediaurl_judge_resolved_ipv6_answers_the_same_way(monkeypatch):
    """At delivery (webhooks) and at download (/send/mediaurl) a name whose DNS answer is an
    IPv4-carrying IPv6 address is judged by the IPv4 address it carries."""
    import socket

    from chalicelib.core.errors import DomainError
    from session_host.media_fetch import fetch_media

    answers: dict[str, str] = {}
    for index, (_form, v6, _v4, _reason) in enumerate(_embedded_cases()):
        answers[f"h{index}.example"] = v6

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (answers[host], port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    for index, (form, v6, v4, reason) in enumerate(_embedded_cases()):
        name = f"h{index}.example"
        expected = f"{name} resolves to {ipaddress.ip_address(v6)}, an address that carries {v4}, {reason}"
        with pytest.raises(BlockedDestination) as caught:
            STRICT.resolve(f"https://{name}/hook")
        assert str(caught.value) == expected, form
        with pytest.raises(DomainError) as refused:
            fetch_media(f"http://{name}/file.jpg", 1 << 20, 1.0, guard=STRICT)
        assert (refused.value.status, refused.value.message) == (400, f"Invalid Url in Payload: {expected}"), form


def test_post_webhook_and_send_mediaurl_refuse_every_embedding_at_the_api(client, monkeypatch):
    """Set time, no DNS: the webhook URL and the /send/mediaurl Url are refused with a 400 before anything
    is stored or dispatched (one refused IPv4 address per form keeps this quick; the guard test above
    walks them all)."""
    settings_env(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="false")
    try:
        client.init("a", "t1")
        for form, build in EMBEDDINGS.items():
            v6 = build("169.254.169.254")
            why = f"{v6} is an address that carries 169.254.169.254, a cloud metadata address"
            response = client.post("/webhook", {"WebhookURL": f"http://[{v6}]/"}, headers={"token": "t1"})
            assert (response.status_code, response.json_body["error"]) == (
                400, f"Invalid WebhookURL in Payload: {why}; webhooks may not target it"), form
            response = client.post("/send/mediaurl", {"Phone": "15550002222", "Url": f"http://[{v6}]/a.jpg"},
                                   headers={"token": "t1"})
            assert (response.status_code, response.json_body["error"]) == (
                400, f"Invalid Url in Payload: {why}; the gateway may not fetch it"), form
        assert SessionModel.get("t1").webhook == ""
    finally:
        monkeypatch.undo()
        from chalicelib.core.settings import get_settings

        get_settings.cache_clear()
