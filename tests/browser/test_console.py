"""The web console (/console) and Swagger UI (/docs) in headless Chromium against the local stack (sim driver).

- The admin's whole flow: log in, create sessions, connect with subscriptions, a QR image that is a real
  PNG and follows its rotation, the phone's scan (/sim/scan), LoggedIn and the JID without a reload, the
  webhook with a secret never shown back, a test text to a second sim session, the delivery in the log,
  redrive, delete. A screenshot is saved to .data/console.png, or to docs/console.png (the README's)
  with WAGO_UPDATE_SCREENSHOT=1, so a test run leaves the tracked one alone.
- A session token, through an API-Gateway-like `/api` stage prefix and at 360 px, by keyboard: its own
  session only, no admin controls, WaGo's error text on a failure.
- /docs (also under `/api`): no failed request, every route of /openapi.json listed, "Try it out" with the
  admintoken security scheme.
- Every page: no request to another origin, no CSP violation, no script error (counted and printed).
"""

from __future__ import annotations

import base64
import http.client
import os
import struct
import time
import zlib
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import PROJECT_DIR, wait_for
from tests.http_server import LocalHTTPServer
from tests.integration.test_local_stack import Launcher
from tests.integration.test_session_lifecycle import FAST, Stack, _data
from tests.integration.test_sim_messaging import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.integration]

FIRST_LOAD_LIMIT = 300_000  # bytes: the bound for the first load of /console
QR_SECONDS = "4"  # short QR lifetimes, so the test sees the console follow a rotation
SCREENSHOT = PROJECT_DIR / ("docs" if os.environ.get("WAGO_UPDATE_SCREENSHOT") == "1" else ".data") / "console.png"
SECRET = "console-test-secret-0123456789"
STAGE_PREFIX = "/api"  # API Gateway's stage in .chalice/config.json
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
              "date", "server"}  # not forwarded by the proxy (it sets its own)


@pytest.fixture(scope="module")
def stack():
    launcher = Launcher({**FAST, "SIM_QR_FIRST_SECONDS": QR_SECONDS, "SIM_QR_NEXT_SECONDS": QR_SECONDS,
                         "SIM_QR_ROTATIONS": "60"})
    try:
        launcher.wait_ready()
        yield Stack(launcher)
    finally:
        launcher.close()


@pytest.fixture(scope="module")
def browser(playwright_sync):
    browser = playwright_sync.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


class StagePrefixProxy:
    """API Gateway's shape on 127.0.0.1: `/api/<path>` is forwarded to the app as `/<path>`; anything
    else is a 403, as API Gateway answers a path outside its stage."""

    def __init__(self, upstream: str):
        target = urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                if not self.path.startswith(STAGE_PREFIX + "/"):
                    return self._answer(403, {"Content-Type": "application/json"}, b'{"message":"Forbidden"}')
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    connection.request(self.command, self.path[len(STAGE_PREFIX):], body=body or None, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                    kept = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP}
                    self._answer(answer.status, kept, payload)
                finally:
                    connection.close()

            def _answer(self, status, headers, payload):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args):
                pass

        self.server = LocalHTTPServer(Handler).start()
        self.origin = f"http://127.0.0.1:{self.server.port}"
        self.base = self.origin + STAGE_PREFIX

    def close(self):
        self.server.close()


@pytest.fixture(scope="module")
def proxy(stack):
    proxy = StagePrefixProxy(stack.launcher.base)
    yield proxy
    proxy.close()


class Traffic:
    """Every request a page makes, failed ones, error statuses, CSP violations and script errors."""

    def __init__(self, page, origin: str):
        self.origin = origin
        self.requests: list = []
        self.failed: list[tuple[str, str]] = []
        self.error_statuses: list[tuple[str, int]] = []
        self.csp: list[str] = []
        self.script_errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r))
        page.on("requestfailed", lambda r: self.failed.append((r.url, r.failure)))
        page.on("response", lambda r: r.status >= 400 and self.error_statuses.append((r.url, r.status)))
        page.on("console", lambda m: "Content Security Policy" in m.text and self.csp.append(m.text))
        page.on("pageerror", lambda e: self.script_errors.append(str(e)))

    def foreign(self) -> list[str]:
        return [r.url for r in self.requests
                if not r.url.startswith(self.origin + "/") and not r.url.startswith("data:")]

    def transferred(self) -> int:
        total = 0
        for request in self.requests:
            if request.url.startswith("data:"):
                continue
            sizes = request.sizes()
            total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        return total

    def assert_clean(self, what: str) -> None:
        print(f"{what}: {len(self.requests)} requests, {len(self.foreign())} to another origin, "
              f"{len(self.csp)} CSP violations, {len(self.script_errors)} script errors")
        assert self.foreign() == [], self.foreign()
        assert self.csp == [], self.csp
        assert self.script_errors == [], self.script_errors


def assert_real_png(data_url: str) -> tuple[int, int]:
    """Decode a PNG data URL chunk by chunk (CRCs, IHDR, the image data's size); return (width, height)."""
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix), data_url[:40]
    raw = base64.b64decode(data_url[len(prefix):], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, idat = 8, [], b""
    while position < len(raw):
        (length,) = struct.unpack(">I", raw[position:position + 4])
        kind = raw[position + 4:position + 8]
        data = raw[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", raw[position + 8 + length:position + 12 + length])
        assert zlib.crc32(kind + data) == crc, f"bad CRC in {kind!r}"
        chunks.append(kind)
        if kind == b"IDAT":
            idat += data
        position += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    ihdr = raw[16:29]
    width, height, depth, color = struct.unpack(">IIBB", ihdr[:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    row_bytes = (width * channels * depth + 7) // 8
    assert len(zlib.decompress(idat)) == height * (1 + row_bytes)  # one filter byte per row
    return width, height


def _login(page, token: str, kind: str = "admin") -> None:
    page.check(f"input[name=kind][value={kind}]")
    page.fill("#login-token", token)
    page.click("#login-form button[type=submit]")


def test_admin_flow_in_the_console(stack, browser, receiver):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    traffic = Traffic(page, stack.launcher.base)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{stack.launcher.base}/console")
    page.wait_for_load_state("networkidle")
    first_load = traffic.transferred()
    print(f"\nfirst load of /console: {first_load} bytes in {len(traffic.requests)} requests "
          f"(limit {FIRST_LOAD_LIMIT})")
    assert 0 < first_load < FIRST_LOAD_LIMIT

    # A wrong token shows WaGo's error text and keeps nothing.
    _login(page, "not-the-admin-token")
    page.wait_for_selector("#error:has-text('invalid admin token')")
    assert page.evaluate("() => sessionStorage.length") == 0

    _login(page, "qwert")
    page.wait_for_selector("#sessions-table")
    saved = page.evaluate("() => sessionStorage.getItem('wago-console-auth')")
    assert "qwert" in saved and page.evaluate("() => document.cookie") == "" and "qwert" not in page.url

    # Create two sessions in the console; a duplicate shows the API's error.
    for name in ("alice", "bob"):
        page.fill("#create-name", name)
        page.fill("#create-token", f"{name}-token")
        page.click("#create-form button[type=submit]")
        page.wait_for_selector(f"#sessions-table th:text-is('{name}')")
    page.fill("#create-name", "alice")
    page.fill("#create-token", "other-token")
    page.click("#create-form button[type=submit]")
    page.wait_for_selector("#error:has-text('POST /session/init')")
    duplicate = _data(stack.api.post("/session/init", headers={"admintoken": "qwert"},
                                     json={"Name": "alice", "Token": "third-token", "Os": "x"}), 409)
    assert duplicate in page.inner_text("#error")  # exactly WaGo's text from the API

    # bob is linked by the test (the second sim session the text goes to).
    _data(stack.call("POST", "/webhook", "bob-token", {"WebhookURL": receiver.url}))
    _data(stack.call("POST", "/session/connect", "bob-token", {"Subscribe": ["Message"]}))
    bob = _data(stack.call("POST", "/sim/scan", "bob-token", {"Token": "bob-token", "Phone": "15550007002"},
                           admin=True))

    # alice: open, connect with subscriptions, QR follows its rotation, scan, LoggedIn without a reload.
    page.click("a[aria-label='Open session alice']")
    page.wait_for_selector("#session-title:text-is('Session alice')")
    page.evaluate("() => { window.notReloaded = true; }")
    page.check("#subscribe input[value=All]")
    page.click("#connect-form button[type=submit]")
    page.wait_for_selector("#qr", state="visible", timeout=15000)
    first_qr = page.get_attribute("#qr", "src")
    width, height = assert_real_png(first_qr)
    shown = page.evaluate("() => [document.querySelector('#qr').naturalWidth, "
                          "document.querySelector('#qr').naturalHeight]")
    assert shown == [width, height] and width >= 100, (shown, width, height)
    page.wait_for_function("(first) => { const qr = document.querySelector('#qr'); "
                           "return qr.getAttribute('src') && qr.getAttribute('src') !== first; }",
                           arg=first_qr, timeout=20000)
    assert_real_png(page.get_attribute("#qr", "src"))
    print("QR image rotated in place")

    scanned = _data(stack.call("POST", "/sim/scan", "alice-token", {"Token": "alice-token", "Phone": "15550007001"},
                               admin=True))
    page.wait_for_selector("#st-summary:has-text('LoggedIn')", timeout=15000)
    assert page.inner_text("#st-jid") == "15550007001@s.whatsapp.net" and scanned["Jid"].startswith("15550007001")
    assert page.is_hidden("#qr-box")
    assert page.evaluate("() => window.notReloaded") is True  # live status, no reload

    # The webhook, with a secret that is never shown back in full.
    page.fill("#wh-url-input", receiver.url)
    page.fill("#wh-secret-input", SECRET)
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector(f"#wh-secret:has-text('…{SECRET[-4:]}')")
    assert page.inner_text("#wh-url") == receiver.url and page.input_value("#wh-secret-input") == ""
    assert SECRET not in page.content() and SECRET not in page.inner_text("body")
    assert page.inner_text("#wh-subscribe") == "All"

    # A test text to bob: sent, received by bob's webhook, and alice's receipt shows in her delivery log.
    page.fill("#send-phone", "15550007002")
    page.fill("#send-body", "hello bob, from the console")
    page.click("#send-form button[type=submit]")
    page.wait_for_selector("#send-result:has-text('Sent')")
    message = wait_for(lambda: receiver.of("bob-token", "Message"), what="bob's message")[0]
    assert message["event"]["Message"] == {"conversation": "hello bob, from the console"}
    page.wait_for_selector("#deliveries-table tr.state-delivered", timeout=30000)
    row = page.inner_text("#deliveries-table tr.state-delivered")
    assert "delivered" in row and "200" in row, row
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print(f"screenshot: {SCREENSHOT.relative_to(PROJECT_DIR)} ({SCREENSHOT.stat().st_size} bytes)")

    # Admin-only controls: redrive (nothing failed: 0) and delete.
    page.click("#redrive")
    page.wait_for_selector("#notice:has-text('Redriven: 0')")

    # The secret removed (deliveries go out unsigned), then the device logged out and the client
    # disconnected, each from its button, each answered with the API's own text.
    page.check("#wh-secret-clear")
    page.click("#webhook-form button[type=submit]")
    page.wait_for_selector("#wh-secret:text-is('not set')")
    assert not _data(stack.call("GET", "/webhook", "alice-token")).get("secret")
    page.click("#logout-session")
    page.wait_for_selector("#st-loggedin:text-is('no')", timeout=15000)
    assert stack.api.get("/session/status", headers={"token": "alice-token"}).json()["data"]["LoggedIn"] is False
    page.click("#disconnect")
    page.wait_for_selector("#st-connected:text-is('no')", timeout=15000)
    answered = page.inner_text("#notice") + page.inner_text("#error")
    assert answered.strip(), "the disconnect's answer is shown"
    page.click("#nav-sessions")
    page.wait_for_selector("#sessions-table th:text-is('alice')")
    assert bob["Jid"] in page.inner_text("#sessions-table")  # the device JID (user:device@server)
    page.fill("#create-name", "carol")
    page.fill("#create-token", "carol-token")
    page.click("#create-form button[type=submit]")
    page.click("button[aria-label='Delete session carol']", timeout=10000)
    page.wait_for_selector("#notice:has-text('Session carol deleted')")
    assert "carol" not in page.inner_text("#sessions-table")
    assert stack.api.get("/session/status", headers={"token": "carol-token"}).status_code == 401

    page.click("#logout")
    page.wait_for_selector("#login-form")
    assert page.evaluate("() => sessionStorage.length") == 0
    traffic.assert_clean("console (admin)")
    page.close()


def test_a_session_token_sees_only_its_session_under_a_stage_prefix_at_360px(stack, browser, proxy):
    for name in ("dora", "eve"):
        stack.init(f"{name}-token")
    page = browser.new_page(viewport={"width": 360, "height": 740})
    traffic = Traffic(page, proxy.origin)
    page.goto(f"{proxy.base}/console")
    page.wait_for_selector("#login-form")

    # By keyboard only: the token field has the focus; back to the token kind, arrow keys, token, Enter.
    assert page.evaluate("() => document.activeElement.id") == "login-token"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => document.activeElement.value") == "admin"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.value") == "session"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "login-token"
    page.keyboard.type("dora-token")
    page.keyboard.press("Enter")
    page.wait_for_selector("#session-title:text-is('Your session')")
    page.wait_for_selector("#st-summary:has-text('Disconnected')")

    # Its own session only, and no admin control anywhere.
    for selector in ("#sessions-table", "#create-form", "[data-admin]", "#delete-session", "#redrive"):
        assert page.query_selector(selector) is None, selector
    assert page.is_hidden("#nav-sessions")
    page.evaluate("() => { window.location.hash = '#/'; }")
    page.wait_for_timeout(300)
    assert page.query_selector("#sessions-table") is None
    assert "eve-token" not in page.inner_text("body")  # the other session (its name is its token)
    assert "/session/all" not in " ".join(r.url for r in traffic.requests)

    # Every control is labelled; the page fits 360 px.
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map((e) => e.outerHTML)""")
    assert unlabelled == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360

    # A failure shows WaGo's text: sending from a session that is not connected.
    page.fill("#send-phone", "15550007009")
    page.click("#send-form button[type=submit]")
    page.wait_for_selector("#error:has-text('POST /send/text')")
    expected = _data(stack.call("POST", "/send/text", "dora-token", {"Phone": "15550007009", "Body": "x"}), 500)
    assert expected in page.inner_text("#error"), (expected, page.inner_text("#error"))

    # Link with a pair code instead of the QR: the phone types it; the console shows the login live.
    page.fill("#pair-phone", "+1 555 000 7004")
    page.click("#pair-form button[type=submit]")
    page.wait_for_selector("#pair-code:has-text('Pair code: ')", timeout=15000)
    code = page.inner_text("#pair-code").split("Pair code: ", 1)[1].split(" ", 1)[0]
    assert len(code) == 9 and code[4] == "-", code
    _data(stack.call("POST", "/sim/scan", "dora-token", {"Token": "dora-token", "Phone": "15550007004", "Code": code},
                     admin=True))
    page.wait_for_selector("#st-summary:has-text('LoggedIn')", timeout=15000)
    assert page.inner_text("#st-jid") == "15550007004@s.whatsapp.net"

    # The call page link and every API call stayed under the stage prefix.
    assert page.get_attribute("#call-link", "href") == "call/page"
    assert page.evaluate("() => document.querySelector('#call-link').href") == f"{proxy.base}/call/page"
    outside = [r.url for r in traffic.requests
               if not r.url.startswith(proxy.base + "/") and not r.url.startswith("data:")]
    assert outside == []
    traffic.assert_clean("console (session token, /api prefix, 360 px)")
    page.close()


def test_docs_lists_every_route_and_try_it_out_works(stack, browser, proxy):
    stack.init("frank-token")
    document = httpx.get(f"{stack.launcher.base}/openapi.json").json()
    expected = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    traffic = Traffic(page, proxy.origin)
    started = time.monotonic()
    page.goto(f"{proxy.base}/docs")
    page.wait_for_selector("body[data-ready=true] .opblock", timeout=20000)
    page.wait_for_load_state("networkidle")
    listed = set(map(tuple, page.evaluate("""() => [...document.querySelectorAll('.opblock')].map((b) => [
        b.querySelector('.opblock-summary-method').textContent.trim(),
        b.querySelector('.opblock-summary-path').getAttribute('data-path')])""")))
    print(f"\n/docs: {len(listed)} operations listed of {len(expected)} in /openapi.json, "
          f"{traffic.transferred()} bytes, ready in {time.monotonic() - started:.1f} s")
    assert listed == expected
    assert traffic.failed == [] and traffic.error_statuses == []

    # "Try it out" with the admintoken security scheme: GET /session/all through the stage prefix.
    page.click("button.authorize")
    admin_scheme = page.locator(".auth-container", has_text="admintoken")
    admin_scheme.locator("input").fill("qwert")
    admin_scheme.locator("button.authorize").click()
    page.click("button.btn-done")
    operation = page.locator("#operations-Admin-session_all")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table tbody tr.response")
    live.first.wait_for(timeout=15000)
    assert live.first.locator(".response-col_status").inner_text().strip() == "200"
    assert "frank-token" in live.first.locator(".response-col_description").inner_text()
    tried = [r.url for r in traffic.requests if r.url.endswith("/session/all")]
    assert tried == [f"{proxy.base}/session/all"], tried
    traffic.assert_clean("docs (/api prefix)")
    page.close()
