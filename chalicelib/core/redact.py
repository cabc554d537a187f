"""No secret in any log line: session tokens, webhook secrets and TURN credentials become fingerprints.

`fingerprint(value)` is `fp:` plus the first 10 hex digits of SHA-256(value): stable, so log lines
about one session can be correlated, and useless for authenticating. `RedactSecrets` is a logging
filter installed on the gateway's logger handlers (chalicelib/core/observability.py): any `extra` key
named like a secret (`token`, `secret`, `credential`, ...) is replaced by its fingerprint, and the
values registered with `register()` are replaced wherever they appear in a message or `extra` string.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

SECRET_KEYS = frozenset({
    "token", "tokens", "session_token", "admintoken", "admin_token", "webhook_secret", "secret", "credential",
    "turn_credential", "password", "link_token", "ring_tokens", "authorization",
    "lane",  # a host's command lane (session_host/commands.py) is keyed by the session token
})
_MIN_REGISTERED = 6  # shorter values would redact ordinary words


def fingerprint(value: Any) -> str:
    """A loggable stand-in for a secret: `fp:` + the first 10 hex digits of SHA-256(str(value)) (40 bits:
    enough to correlate one session's lines, useless to authenticate). None or "" -> ""; a list, tuple
    or set -> the fingerprints of its items joined by `,`; a value already `fp:...` is returned as is."""
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(fingerprint(v) for v in value)
    if isinstance(value, str) and value.startswith("fp:"):
        return value  # already a fingerprint (a record can pass several filters)
    return "fp:" + hashlib.sha256(str(value).encode()).hexdigest()[:10]


_known: set[str] = set()
_known_lock = threading.Lock()


def register(*secrets: str | None) -> None:
    """Remember secret values (a host's session tokens, TURN credentials) so free text is scrubbed too."""
    with _known_lock:
        _known.update(s for s in secrets if s and len(s) >= _MIN_REGISTERED)


def scrub(text: str) -> str:
    """`text` with every registered secret (`register`) replaced by its fingerprint, longest first (a
    secret containing another is replaced whole); text holding none comes back unchanged."""
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, fingerprint(secret))
    return text


class RedactSecrets(logging.Filter):
    """The logging filter that keeps secrets out of log lines (installed by `install`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite `record` in place and keep it (always True: nothing is dropped). Values of `extra` keys
        in SECRET_KEYS become fingerprints; once a secret is registered, the message, its %-args, every
        non-standard string attribute and a formatted traceback are scrubbed (a traceback that held a
        secret is replaced by its scrubbed text under the record's `exception` key)."""
        for key in SECRET_KEYS:
            if key in record.__dict__:
                record.__dict__[key] = fingerprint(record.__dict__[key])
        if _known:
            if isinstance(record.msg, str):
                record.msg = scrub(record.msg)
            if record.args:
                record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args) \
                    if isinstance(record.args, tuple) else record.args
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD and isinstance(value, str):
                    record.__dict__[key] = scrub(value)
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                clean = scrub(text)
                if clean != text:  # the formatter would print the secret: log the scrubbed text instead
                    record.exc_info, record.exc_text = None, None
                    record.__dict__["exception"] = clean
        return True


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def install(*loggers: logging.Logger) -> None:
    """Add the filter to each logger's handlers and to the root logger's, once (a handler filter sees
    every record it writes, also those propagated from other loggers)."""
    for target in (*loggers, logging.getLogger()):
        for handler in target.handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(RedactSecrets())
