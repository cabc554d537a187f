"""The local API server follows HTTP/1.1 framing for every method (issue 14, item 11).

One keep-alive connection carries every method to several kinds of route (a GET route, a POST-only
route, an unknown path), each answer followed by a GET on the same connection: a body after HEAD,
or a request body left unread, would corrupt that next answer. Bodies sent chunked are decoded;
requests whose body cannot be delimited get a 400 and the connection is closed.
The server runs as its own process (`python -m local_gateway.api_server`), on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time

import pytest

from tests.conftest import ADMIN, api_server

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PATHS = ("/server/ok", "/session/init", "/no/such/route", "/openapi.json")


@pytest.fixture(scope="module")
def server():
    env = {**os.environ, "STAGE": "test", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    with api_server(env) as port:
        yield port


def _ok(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/server/ok")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {"code": 200, "data": {"status": "ok"}, "success": True}


def test_every_method_on_every_kind_of_route_keeps_the_connection_in_step(server):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        for path in PATHS:
            for method in METHODS:
                conn.request(method, path, body=b"{}" if method in ("POST", "PUT", "PATCH") else None,
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                body = response.read()
                if method == "HEAD":
                    assert body == b""
                    conn.request("GET", path)
                    same = conn.getresponse()
                    get_body = same.read()
                    assert response.status == same.status, path  # HEAD answers as GET would
                    assert int(response.getheader("Content-Length")) == len(get_body), path
                _ok(conn)  # the connection is still in step
    finally:
        conn.close()


def test_head_sends_no_body_on_the_wire(server):
    """Read the raw bytes: after HEAD's header block, the very next bytes are the next answer's."""
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(b"HEAD /server/ok HTTP/1.1\r\nHost: x\r\n\r\nGET /server/ok HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"}"):
            assert time.monotonic() < deadline, data
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 56" in head  # GET's body length
    assert rest.startswith(b"HTTP/1.1 200")


def test_a_chunked_body_is_decoded_and_consumed(server):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        chunks = iter([b'{"Na', b'me": ""', b"}"])
        conn.request("POST", "/session/init", body=chunks, headers={**ADMIN, "Content-Type": "application/json"},
                     encode_chunked=True)
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())["error"]) == (400, "Missing Name in Payload")
        _ok(conn)
    finally:
        conn.close()


@pytest.mark.parametrize("headers,reason", [
    (b"Content-Length: abc\r\n", "Content-Length 'abc' is not a number of bytes"),
    (b"Content-Length: -1\r\n", "Content-Length '-1' is not a number of bytes"),
    ("Content-Length: \u0663\r\n".encode(), "Content-Length"),
    (b"Content-Length: 5\r\nContent-Length: 6\r\n", "conflicting Content-Length values"),
    (b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "both Transfer-Encoding and Content-Length"),
    (b"Transfer-Encoding: gzip\r\n", "unsupported Transfer-Encoding 'gzip'"),
    (b"Transfer-Encoding: chunked\r\n", "malformed chunk size"),
])
def test_a_body_that_cannot_be_delimited_is_a_400_and_the_connection_closes(server, headers, reason):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        body = b"zz\r\n{}\r\n0\r\n\r\n" if b"chunked" in headers and b"Length" not in headers else b"{}"
        sock.sendall(b"POST /session/init HTTP/1.1\r\nHost: x\r\nadmintoken: qwert\r\n" + headers + b"\r\n" + body)
        data = b""
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, data
            chunk = sock.recv(65536)
            if not chunk:
                break  # the server closed the connection
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), data
    assert b"Connection: close" in head
    assert json.loads(payload)["error"].startswith(f"Bad Request: {reason}"), payload


@pytest.mark.parametrize("request_bytes,status,error", [
    (b"BREW /server/ok HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Not Implemented: Unsupported method ('BREW')"),
    (b"GET /server/ok HTTP/1.1\r\nHost: x\r\ntoken: " + b"t" * 70000 + b"\r\n\r\n", 431,
     "Request Header Fields Too Large: Line too long"),
    (b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "Request-URI Too Long"),
])
def test_the_http_servers_own_refusals_are_envelopes_and_close(server, request_bytes, status, error):
    """http.server refuses these before the app sees them; the answer is still WaGo's envelope."""
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(request_bytes)
        data = b""
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, data
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break  # closed with part of a long request unread
            if not chunk:
                break
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()) or head.startswith(f"HTTP/1.0 {status}".encode()), data
    assert b"Content-Type: application/json" in head and b"Connection: close" in head
    assert json.loads(payload) == {"code": status, "error": error, "success": False}


def test_the_access_log_shows_query_tokens_as_fingerprints(monkeypatch, capsys):
    """`WAGO_ACCESS_LOG=1` logs each request line, which carries WaGo's `?token=` fallback."""
    from chalicelib.core.redact import fingerprint
    from local_gateway.api_server import WagoRequestHandler

    monkeypatch.setenv("WAGO_ACCESS_LOG", "1")
    handler = object.__new__(WagoRequestHandler)
    handler.client_address = ("127.0.0.1", 5)
    handler.requestline = "GET /session/status?limit=5&token=LEAKY%20token1&AdminToken=qwert HTTP/1.1"
    handler.log_request(200)
    err = capsys.readouterr().err
    assert "LEAKY" not in err and "qwert" not in err, err
    assert f"?limit=5&token={fingerprint('LEAKYtoken1')}&AdminToken={fingerprint('qwert')} HTTP/1.1" in err


def test_options_answers_as_api_gateway_does_wagos_404(server):
    """No route sets CORS, so the deployed API has no OPTIONS method: API Gateway's answer is the
    MISSING_AUTHENTICATION_TOKEN gateway response, WaGo's 404 envelope (not chalice's 200 preflight)."""
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        for path, body in (("/server/ok", None), ("/send/text", b'{"Phone": "1"}'), ("/no/such/route", None)):
            conn.request("OPTIONS", path, body=body, headers={"Origin": "http://127.0.0.1:9"})
            response = conn.getresponse()
            assert (response.status, json.loads(response.read())) == (
                404, {"code": 404, "error": "Not Found", "success": False}), path
            _ok(conn)  # the body was read: the connection is still in step
    finally:
        conn.close()
