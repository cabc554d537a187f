"""The web console (`GET /console`) and Swagger UI (`GET /docs`): static files from `chalicelib/static/`.

Chalice packages only `app.py`, `chalicelib/` and `vendor/`, so the pages live in the Lambda package:
`static/console/` (plain ES modules and CSS, committed) and `static/docs/` (our `index.html` and
`docs.js`, plus Swagger UI's `swagger-ui-bundle.js` and `swagger-ui.css`, copied from the pinned npm
package `swagger-ui-dist` by `make assets`: see `web/package.json`).

Every page and file is served with a strict Content-Security-Policy (scripts, styles and fetches from
this origin only; no inline script or style; images also from `data:` for the QR PNG), `nosniff`, and
framing refused (`X-Frame-Options: DENY`, `frame-ancestors 'none'`). The pages use relative URLs only,
so they work the same at `/console` locally and at `/<stage>/console` behind API Gateway.

A file name is one path segment of letters, digits, `.`, `_` and `-` with a known extension; anything
else, or a file that is not there, is WaGo's 404 envelope (`Not Found`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from chalice import Response

from chalicelib.core.errors import DomainError
from chalicelib.routing import Auth, Call, Router

STATIC = Path(__file__).resolve().parent.parent / "static"
CONSOLE_DIR = STATIC / "console"
DOCS_DIR = STATIC / "docs"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules need a JavaScript MIME type (HTML spec)
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
ASSET_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")

CSP_DIRECTIVES = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # the QR code is a PNG data URL (GET /session/qr)
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",  # forms are handled by script; nothing is ever submitted by navigation
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(CSP_DIRECTIVES)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PAGE_CACHE = "no-store"
ASSET_CACHE = "public, max-age=300"  # file names carry no version: keep a deploy visible within minutes

console_router = Router(__name__, tag="Console")
docs_router = Router(__name__, tag="Docs")


@lru_cache(maxsize=64)
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def static_file(directory: Path, name: str, cache_control: str = ASSET_CACHE) -> Response:
    """The file `name` of `directory` with its content type and the security headers.

    Raises DomainError(404, "Not Found") for a name that is not a plain file name with a known extension,
    or a file that does not exist (e.g. Swagger UI's files before `make assets`).
    """
    suffix = Path(name).suffix
    if not ASSET_NAME.match(name) or suffix not in CONTENT_TYPES:
        raise DomainError(404, "Not Found")
    path = directory / name
    if not path.is_file():
        raise DomainError(404, "Not Found")
    headers: dict[str, str | list[str]] = {
        "Content-Type": CONTENT_TYPES[suffix], "Cache-Control": cache_control, **SECURITY_HEADERS}
    return Response(body=_read(path), status_code=200, headers=headers)


@console_router.route("GET", "/console", auth=Auth.NONE, enveloped=False,
                      summary="The web console (HTML): log in with the admin token or a session token.")
def console_page(call: Call) -> Response:
    return static_file(CONSOLE_DIR, "index.html", PAGE_CACHE)


@console_router.route("GET", "/console/{asset}", auth=Auth.NONE, enveloped=False,
                      summary="A file of the web console (JavaScript module or stylesheet).")
def console_asset(call: Call) -> Response:
    return static_file(CONSOLE_DIR, call.params["asset"])


@docs_router.route("GET", "/docs", auth=Auth.NONE, enveloped=False,
                   summary="Swagger UI over /openapi.json (HTML).")
def docs_page(call: Call) -> Response:
    return static_file(DOCS_DIR, "index.html", PAGE_CACHE)


@docs_router.route("GET", "/docs/{asset}", auth=Auth.NONE, enveloped=False,
                   summary="A file of the Swagger UI page (Swagger UI's bundle and stylesheet, our start script).")
def docs_asset(call: Call) -> Response:
    return static_file(DOCS_DIR, call.params["asset"])
