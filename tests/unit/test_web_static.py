"""/console and /docs: static files from the Lambda package with a strict CSP, and nothing inline or remote.

(The pages themselves are driven in a real browser by tests/browser/test_console.py.)
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from chalicelib.routes import web
from tests.conftest import PROJECT_DIR

PAGES = {"/console": web.CONSOLE_DIR / "index.html", "/docs": web.DOCS_DIR / "index.html"}
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


class _Markup(HTMLParser):
    """Collects what a strict CSP would refuse (inline script/style, handlers) and every referenced URL."""

    def __init__(self):
        super().__init__()
        self.inline: list[str] = []
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "style":
            self.inline.append("<style> element")
        for name in attributes:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=…>")
        if tag == "script" and not attributes.get("src"):
            self._in_script = True
        for name in ("src", "href", "action"):
            if attributes.get(name) is not None:
                self.urls.append(attributes[name])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append("inline <script>")


def _security_headers_are_strict(headers) -> None:
    policy = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy and "*" not in policy
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", sorted(PAGES))
def test_pages_are_served_with_a_strict_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    _security_headers_are_strict(response.headers)
    assert response.body.decode() == PAGES[path].read_text()


@pytest.mark.parametrize("path", sorted(PAGES))
def test_pages_have_nothing_inline_and_only_relative_urls(path):
    markup = _Markup()
    markup.feed(PAGES[path].read_text())
    assert markup.inline == []
    # Relative URLs only: the pages work under API Gateway's /<stage>/ prefix and reach no other origin.
    for url in markup.urls:
        assert url == "data:," or not (url.startswith("/") or ":" in url.split("/", 1)[0]), url


def test_console_modules_and_stylesheet(client):
    for name in sorted(p.name for p in web.CONSOLE_DIR.iterdir() if p.suffix in (".js", ".css")):
        response = client.get(f"/console/{name}")
        assert response.status_code == 200, name
        expected = "text/javascript; charset=utf-8" if name.endswith(".js") else "text/css; charset=utf-8"
        assert response.headers["Content-Type"] == expected
        _security_headers_are_strict(response.headers)
        assert response.body.decode() == (web.CONSOLE_DIR / name).read_text()


def test_swagger_ui_comes_from_the_pinned_npm_package(client):
    missing = [name for name in SWAGGER_FILES if not (web.DOCS_DIR / name).is_file()]
    assert not missing, f"{missing} missing: run `make assets` (copies them from web/node_modules/swagger-ui-dist)"
    pinned = (PROJECT_DIR / "web" / "package.json").read_text()
    assert '"swagger-ui-dist": "5.' in pinned  # an exact version, locked with its hash in package-lock.json
    for name in (*SWAGGER_FILES, "docs.js", "docs.css"):
        response = client.get(f"/docs/{name}")
        assert response.status_code == 200, name
        _security_headers_are_strict(response.headers)
    installed = PROJECT_DIR / "web" / "node_modules" / "swagger-ui-dist" / "swagger-ui-bundle.js"
    if installed.is_file():
        assert (web.DOCS_DIR / "swagger-ui-bundle.js").read_bytes() == installed.read_bytes()


@pytest.mark.parametrize("path", [
    "/console/app.py", "/console/missing.js", "/console/.hidden.js", "/console/..%2Fapp.py",
    "/console/%2E%2E", "/docs/..", "/docs/package.json", "/console/index.htm",
])
def test_anything_else_is_wagos_404(client, path):
    response = client.get(path)
    assert response.status_code == 404, path
    assert response.json_body == {"code": 404, "error": "Not Found", "success": False}


def test_pages_are_documented_without_auth(client):
    document = client.get("/openapi.json").json_body
    for path, tag in (("/console", "Console"), ("/console/{asset}", "Console"), ("/docs", "Docs"),
                      ("/docs/{asset}", "Docs")):
        operation = document["paths"][path]["get"]
        assert operation["security"] == [] and operation["tags"] == [tag], path


def test_the_lambda_package_gets_only_what_the_pages_need():
    # Chalice packages all of chalicelib/: no source maps, no other Swagger UI builds, no node_modules.
    docs = {p.name for p in web.DOCS_DIR.iterdir() if not p.name.startswith(".")}
    assert docs <= {"index.html", "docs.js", "docs.css", *SWAGGER_FILES, "swagger-ui-bundle.js.LICENSE.txt",
                    "swagger-ui-LICENSE.txt"}, docs
    console = {p.name for p in web.CONSOLE_DIR.iterdir()}
    assert all(name.endswith((".html", ".js", ".css")) for name in console), console
    static_bytes = sum(p.stat().st_size for p in web.STATIC.rglob("*") if p.is_file())
    print(f"\nchalicelib/static: {static_bytes} bytes")
    assert static_bytes < 2_500_000


def test_every_operation_declares_the_security_swagger_ui_needs_for_try_it_out(client):
    document = client.get("/openapi.json").json_body
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"token": {"type": "apiKey", "in": "header", "name": "token"},
                       "admintoken": {"type": "apiKey", "in": "header", "name": "admintoken"}}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "security" in operation, (method, path)
            for requirement in operation["security"]:
                assert set(requirement) <= set(schemes), (method, path, requirement)
    assert document["paths"]["/session/status"]["get"]["security"] == [{"token": []}]
    assert document["paths"]["/session/delete"]["post"]["security"] == [{"admintoken": [], "token": []}]
