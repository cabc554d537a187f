"""Every URL the gateway stores or fetches is parsed once, at the API, with a 400 (issue 14, item 10).

The URL fields are found from the routes themselves (every request-model field typed HttpUrl or
OptionalHttpUrl), so a new URL field is covered without touching this test; /send/preview's `Url`
(checked in its handler, kept as written because WhatsApp matches it in the text) is added by hand.
"""

from __future__ import annotations

import httpx
import pytest

from chalicelib.core.urls import InvalidUrl, parse_http_url
from tests.conftest import ADMIN

TOKEN = "url-token"

BROKEN = {
    "http://127.0.0.1:abc/x": "port 'abc' is not a number from 1 to 65535",
    "http://h:65536/": "port '65536' is not a number from 1 to 65535",
    "http://h:99999999999999999999/": "port '99999999999999999999' is not a number from 1 to 65535",
    "http://h:0/": "port '0' is not a number from 1 to 65535",
    "http://h:-1/": "port '-1' is not a number from 1 to 65535",
    "http://h:+80/": "port '+80' is not a number from 1 to 65535",
    "http://h:\u0661\u0662/": "port '\u0661\u0662' is not a number from 1 to 65535",
    "http://[::1/": "cannot be parsed (Invalid IPv6 URL)",
    "http://[::1]x/": "has 'x' after its host",
    "http://[fe80::1%25eth0]/": "an IPv6 zone id (%...) names an interface of this machine, not a host",
    "http://[1:2:3]/": "cannot be parsed ('1:2:3' does not appear to be an IPv4 or IPv6 address)",
    "http://:80/": "has no host",
    "http://a..b/": "host 'a..b' is not a valid host name",
    "http://xn--zz/": "host 'xn--zz' has a malformed IDNA label 'xn--zz'",
    "http://exa mple.com/": "must not contain spaces or control characters",
    "http://h/\x7f": "must not contain spaces or control characters",
    "http://10.0.0.8\\@example.com/": "must not contain a backslash (write it as %5C)",
    "http://h/a\\b": "must not contain a backslash (write it as %5C)",
    "ftp://h/": "must be an absolute http:// or https:// URL",
    "http:/h": "must be an absolute http:// or https:// URL",
    "//h/x": "must be an absolute http:// or https:// URL",
}


def _url_fields() -> list[tuple[str, str, dict]]:
    """(path, field alias, other required fields) for every URL field of every route."""
    from app import ROUTES
    from chalicelib.routes.fields import _http_url, _optional_http_url

    found = []
    for spec in ROUTES:
        if spec.body is None:
            continue
        for name, field in spec.body.model_fields.items():
            validators = [getattr(m, "func", None) for m in field.metadata]
            if _http_url in validators or _optional_http_url in validators:
                found.append((spec.path, field.alias or name))
    return found


BASE = {"Phone": "15550002222", "Body": "see http://example.com/", "Title": "t", "SourceUrl": "https://example.com/",
        "DirectPath": "/v/t62/x", "WebhookURL": "https://example.com/hook"}


def test_the_url_fields_are_the_ones_we_know():
    fields = set(_url_fields())
    assert {("/webhook", "WebhookURL"), ("/send/mediaurl", "Url"), ("/send/preview2", "SourceUrl"),
            ("/send/preview2", "ThumbnailUrl"), ("/message/download/image", "URL")} <= fields
    assert len(fields) >= 10  # + the other download routes


def test_every_url_field_refuses_every_broken_url_with_400(client):
    client.init("u", TOKEN)
    headers = {**ADMIN, "token": TOKEN}
    targets = [*_url_fields(), ("/send/preview", "Url")]
    for url, reason in BROKEN.items():
        for path, field in targets:
            response = client.post(path, {**BASE, field: url}, headers=headers)
            assert response.status_code == 400, (url, path, field, response.json_body)
            assert response.json_body == {"code": 400, "success": False,
                                          "error": f"Invalid {field} in Payload: {reason}"}, (url, path, field)
    from chalicelib.core.models import SessionModel

    assert SessionModel.get(TOKEN).webhook == ""  # nothing stored


def test_what_is_accepted_is_stored_in_one_normal_form_every_client_reads_alike():
    cases = {
        "HTTPS://Example.COM:0443/p?q=1#f": ("https://example.com/p?q=1#f", "example.com", 443),
        "http://h\u00e9llo.example:8080/": ("http://xn--hllo-bpa.example:8080/", "xn--hllo-bpa.example", 8080),
        "http://[2606:4700::1]:81/x": ("http://[2606:4700::1]:81/x", "2606:4700::1", 81),
        "http://h.example.:80": ("http://h.example", "h.example", 80),
        "  http://user:pw@h.example/  ": ("http://user:pw@h.example/", "h.example", 80),
    }
    for raw, (url, host, port) in cases.items():
        parsed = parse_http_url(raw)
        assert (parsed.url, parsed.host, parsed.port) == (url, host, port), raw
        again = httpx.URL(parsed.url)  # the fan-out's and the host's HTTP client agree
        assert (again.raw_host.decode(), again.port or (443 if again.scheme == "https" else 80)) == (host, port), raw
        assert parse_http_url(parsed.url) == parsed  # and parsing the normal form changes nothing


@pytest.mark.parametrize("url", sorted(BROKEN))
def test_a_broken_url_already_stored_is_refused_by_the_guard_not_a_crash(url):
    """Rows from before this check: the fan-out and the media fetch get a BlockedDestination (DLQ at
    once, or a 400), never a ValueError retried with a stack trace."""
    from chalicelib.core.ssrf import BlockedDestination, Guard

    with pytest.raises(InvalidUrl):
        parse_http_url(url)
    with pytest.raises(BlockedDestination) as caught:
        Guard().resolve(url)
    assert str(caught.value) == f"the URL {BROKEN[url]}"
