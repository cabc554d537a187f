"""The HTTP server every test receiver uses: on 127.0.0.1, and one that really stops.

`socketserver`'s `shutdown()` only ends the accept loop: the listening socket stays open, so the kernel
keeps completing connections nobody will ever read, and threads of keep-alive connections keep
serving. A webhook POST in flight at teardown then waited out the fan-out's 10 s timeout. `close()`
here stops the loop, closes the listening socket (new connections are refused at once) and shuts
down every open connection (a keep-alive client sees the end at once).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0):
        super().__init__(("127.0.0.1", port), handler)  # port 0: a free one
        self.port = self.server_address[1]
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def process_request(self, request, client_address) -> None:  # noqa: ANN001 - socketserver's API
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # noqa: ANN001
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        if not self._closing:  # a connection we hung up on is not an error worth a traceback
            super().handle_error(request, client_address)

    def close(self) -> None:
        self._closing = True
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
