"""Every HTTP server the tests run stops for real (issue 14, item 16): after close(), a new connection is
refused at once and an open keep-alive connection ends at once, so nothing waits out a client timeout
(a webhook POST in flight at teardown used to cost 10 s per run)."""

from __future__ import annotations

import http.client
import re
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR


def _servers():
    from tests.integration.test_sim_message_ops import FileServer
    from tests.integration.test_sim_messaging import Receiver as SimReceiver
    from tests.unit.webhook_helpers import Receiver

    webhook = Receiver().__enter__()
    return {"webhook_helpers.Receiver": (webhook.server, "POST", webhook.__exit__),
            "test_sim_messaging.Receiver": (SimReceiver().server, "POST", None),
            "test_sim_message_ops.FileServer": (FileServer(b"png").server, "GET", None)}


def test_no_test_starts_an_http_server_of_its_own():
    """The kind, found by grepping the tests for http.server's classes: every one goes through
    tests/http_server.py."""
    offenders = []
    for path in Path(PROJECT_DIR, "tests").rglob("*.py"):
        if path.name in ("http_server.py", "test_test_servers.py"):
            continue
        if re.search(r"(?<!Local)(HTTPServer|TCPServer)\(", path.read_text()):
            offenders.append(str(path.relative_to(PROJECT_DIR)))
    assert offenders == []


@pytest.mark.parametrize("name", ["webhook_helpers.Receiver", "test_sim_messaging.Receiver",
                                  "test_sim_message_ops.FileServer"])
def test_every_test_server_refuses_and_hangs_up_at_once_after_close(name):
    server, method, exit_ = _servers()[name]
    port = server.port
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    kept.request(method, "/hook", body=b"token=t&jsonData=%7B%7D" if method == "POST" else None,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    kept.getresponse().read()
    started = time.monotonic()
    (exit_ or (lambda *a: server.close()))(None, None, None)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        kept.request(method, "/hook", body=b"x" if method == "POST" else None)
        kept.getresponse().read()
    assert time.monotonic() - started < 3
    kept.close()
