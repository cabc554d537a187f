"""Serve the Chalice app object (the one Lambda runs) over HTTP, the way API Gateway fronts it.

chalice's own local server answers unknown routes with API Gateway's default 403 body; the
deployed API maps that gateway response to WaGo's 404 envelope, and so does this server.

Under `make run` the launcher owns the listening socket and passes it down (`--fd`): when this
process dies and the launcher restarts it, connections wait in the socket's backlog instead of
being refused, so the gateway keeps answering across an API restart.

HTTP/1.1 message framing (RFC 9112 §6, RFC 9110 §9.3.2) holds for every method, so a keep-alive
connection never desynchronises (chalice's handler wrote a body after HEAD and read request bodies
by Content-Length only):
- HEAD is answered as GET without its body (same status and headers, Content-Length included);
- 1xx, 204 and 304 answers carry no body and no Content-Length;
- a request body is read by `Transfer-Encoding: chunked` or by a Content-Length of ASCII digits;
  a malformed Content-Length, both headers at once, or another transfer coding is a 400 envelope
  and the connection is closed (the next request's start cannot be found).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import unquote_plus

from chalice.cli.factory import CLIFactory
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    ForbiddenError,
    LocalChalice,
    LocalDevServer,
    ThreadedHTTPServer,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent


MAX_REQUEST_BYTES = 64 << 20  # beyond any body a route takes (media data URLs are the largest)


_TOKEN_PARAM = re.compile(r"([?&](?:token|admintoken)=)([^&\s#]*)", re.IGNORECASE)


def redact_query(text: str) -> str:
    """`text` with every `token=` / `admintoken=` query value replaced by its fingerprint."""
    from chalicelib.core.redact import fingerprint

    return _TOKEN_PARAM.sub(lambda m: m.group(1) + fingerprint("".join(unquote_plus(m.group(2)).split())), text)


class FramingError(Exception):
    """The request's body cannot be delimited: answer 400 and close the connection."""


class WagoRequestHandler(ChaliceRequestHandler):
    _head = False

    def setup(self) -> None:
        super().setup()
        # chalice writes headers and body in separate sends; without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every keep-alive response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- requests: one body per message, delimited as RFC 9112 §6.3 says -------------------------

    def _generic_handle(self) -> None:
        try:
            super()._generic_handle()
        except FramingError as exc:
            self._refuse_unframed(exc)

    def _refuse_unframed(self, exc: FramingError) -> None:
        self.close_connection = True
        body = json.dumps({"code": 400, "error": f"Bad Request: {exc}", "success": False})
        self._send_http_response(400, {"Content-Type": "application/json", "Connection": "close"}, body)

    def do_HEAD(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        self._head = True
        self.command = "GET"  # the app answers HEAD as GET; the body is dropped when sending
        try:
            self._generic_handle()
        finally:
            self.command, self._head = "HEAD", False

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _generic_handle

    def do_OPTIONS(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        """The deployed API defines no OPTIONS method (no route sets CORS), so API Gateway answers one
        with its MISSING_AUTHENTICATION_TOKEN gateway response, which the stack maps to WaGo's 404
        envelope. chalice's server would answer 200, its automatic CORS preflight."""
        try:
            self._parse_payload()  # read the body, if any, to keep the connection in step
        except FramingError as exc:
            self._refuse_unframed(exc)
            return
        from chalicelib.routing import NOT_FOUND_BODY

        self._send_http_response(404, {"Content-Type": "application/json"}, NOT_FOUND_BODY)

    def _parse_payload(self):  # noqa: ANN202 - chalice's signature
        transfer = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if transfer:
            if lengths:
                raise FramingError("both Transfer-Encoding and Content-Length")
            codings = [c.strip().lower() for value in transfer for c in value.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise FramingError(f"unsupported Transfer-Encoding {', '.join(codings)!r}")
            body = self._read_chunked()
        else:
            values = {v.strip() for value in lengths for v in value.split(",")}
            if len(values) > 1:
                raise FramingError("conflicting Content-Length values")
            text = values.pop() if values else "0"
            if not (text.isascii() and text.isdigit()) or len(text) > 12:
                raise FramingError(f"Content-Length {text[:20]!r} is not a number of bytes")
            size = int(text)
            if size > MAX_REQUEST_BYTES:
                raise FramingError(f"body of {size} bytes exceeds {MAX_REQUEST_BYTES}")
            body = self.rfile.read(size) if size else None
            if body is not None and len(body) < size:
                raise FramingError("the body ended before Content-Length bytes")
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        return headers, body

    def _read_chunked(self) -> bytes | None:
        body = bytearray()
        while True:
            line = self.rfile.readline(1026)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise FramingError("malformed chunk size")
            size = int(size_text, 16)
            if len(body) + size > MAX_REQUEST_BYTES:
                raise FramingError(f"chunked body exceeds {MAX_REQUEST_BYTES} bytes")
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise FramingError("a chunk ended early")
            body += chunk
        for _ in range(100):  # trailer fields up to the empty line
            trailer = self.rfile.readline(8192)
            if trailer in (b"\r\n", b"\n", b""):
                break
        else:
            raise FramingError("too many trailer fields")
        return bytes(body) or None

    # -- responses: no body where HTTP forbids one ------------------------------------------------

    def _send_http_response_with_body(self, code: int, headers, body) -> None:  # noqa: ANN001
        if code < 200 or code in (204, 304):
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            self.send_response(code)
            self._send_headers(headers)  # ends the header block
            return
        if not self._head:
            super()._send_http_response_with_body(code, headers, body)
            return
        # HEAD: the headers GET would send, Content-Length included, and no body.
        if not isinstance(body, bytes):
            body = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self._send_headers(headers)

    def _send_http_response_no_body(self, code: int, headers) -> None:  # noqa: ANN001
        if code < 200 or code in (204, 304):
            self.send_response(code)
            self._send_headers({k: v for k, v in headers.items() if k.lower() != "content-length"})
            return
        super()._send_http_response_no_body(code, headers)

    def _send_error_response(self, error) -> None:  # noqa: ANN001 - chalice's signature
        if isinstance(error, ForbiddenError) and b"Missing Authentication Token" in (error.body or b""):
            from chalicelib.routing import NOT_FOUND_BODY

            self._send_http_response(404, {"Content-Type": "application/json"}, NOT_FOUND_BODY)
            return
        super()._send_error_response(error)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a request line or header over 64 KiB: 414/431, a malformed
        request line: 400, an unknown method: 501) in WaGo's envelope instead of its HTML page; the
        connection is closed, as http.server does, since the rest of the request was not read."""
        short = self.responses.get(code, ("Error",))[0]
        detail = message if message and message != short else ""
        body = json.dumps({"code": code, "error": f"{short}: {detail}" if detail else short, "success": False})
        self.close_connection = True
        try:
            self.send_response(code, short)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body.encode())
        except OSError:
            pass  # the client is gone

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        if os.environ.get("WAGO_ACCESS_LOG", "0") == "1":
            # The request line carries WaGo's `?token=` fallback: logged as its fingerprint, never as is.
            super().log_message(format, *(redact_query(a) if isinstance(a, str) else a for a in args))


def _server_on_fd(fd: int) -> type[ThreadedHTTPServer]:
    """A ThreadedHTTPServer that serves an inherited, already listening socket."""

    class InheritedSocketServer(ThreadedHTTPServer):
        def __init__(self, address, handler) -> None:  # noqa: ANN001 - socketserver's signature
            super().__init__(address, handler, bind_and_activate=False)
            self.socket.close()
            # Annotated: chalice's ThreadedHTTPServer has an untyped base (six.moves' ThreadingMixIn), so
            # mypy would otherwise infer this attribute from this assignment, after the line above reads it.
            self.socket: socket.socket = socket.socket(fileno=fd)
            self.server_address = self.socket.getsockname()[:2]
            self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    return InheritedSocketServer


def build_server(host: str, port: int, stage: str = "local", fd: int | None = None) -> LocalDevServer:
    factory = CLIFactory(str(PROJECT_DIR), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    # What chalice.local.create_local_server does, with our request handler.
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    if fd is None:
        return LocalDevServer(app, config, host, port, handler_cls=WagoRequestHandler)
    return LocalDevServer(app, config, host, port, handler_cls=WagoRequestHandler, server_cls=_server_on_fd(fd))


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1337)
    # The Chalice stage's environment_variables (.chalice/config.json) set STAGE in this process: it must
    # be the stage the launcher and the session host run (STAGE=dev make run ran the API as `local`, on
    # wago-local-* tables the launcher never created). A stage without a config entry (test) sets nothing.
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "local",
                        help="Chalice stage whose configuration the app gets (default: $STAGE, else local)")
    parser.add_argument("--fd", type=int, default=None, help="serve this inherited listening socket")
    args = parser.parse_args()
    server = build_server(args.host, args.port, args.stage, args.fd)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
