"""Serve the Chalice app object (the one Lambda runs) over HTTP, the way API Gateway fronts it.

chalice's own local server answers unknown routes with API Gateway's default 403 body; the
deployed API maps that gateway response to WaGo's 404 envelope, and so does this server.

Under `make run` the launcher owns the listening socket and passes it down (`--fd`): when this
process dies and the launcher restarts it, connections wait in the socket's backlog instead of
being refused, so the gateway keeps answering across an API restart.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

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


class WagoRequestHandler(ChaliceRequestHandler):
    def setup(self) -> None:
        super().setup()
        # chalice writes headers and body in separate sends; without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every keep-alive response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send_error_response(self, error) -> None:  # noqa: ANN001 - chalice's signature
        if isinstance(error, ForbiddenError) and b"Missing Authentication Token" in (error.body or b""):
            from chalicelib.routing import NOT_FOUND_BODY

            self._send_http_response(404, {"Content-Type": "application/json"}, NOT_FOUND_BODY)
            return
        super()._send_error_response(error)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler API
        if os.environ.get("WAGO_ACCESS_LOG", "0") == "1":
            super().log_message(format, *args)


def _server_on_fd(fd: int) -> type[ThreadedHTTPServer]:
    """A ThreadedHTTPServer that serves an inherited, already listening socket."""

    class InheritedSocketServer(ThreadedHTTPServer):
        def __init__(self, address, handler) -> None:  # noqa: ANN001 - socketserver's signature
            super().__init__(address, handler, bind_and_activate=False)
            self.socket.close()
            self.socket = socket.socket(fileno=fd)
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
    parser.add_argument("--stage", default="local")
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
