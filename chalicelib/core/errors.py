"""The one error vocabulary of the gateway: a domain failure with the HTTP status WaGo answers it with.

Raised anywhere (API routes, media checks, the bus, the session host, its drivers, the simulator).
The API renders it as WaGo's error envelope `{"code": status, "error": message, "success": false}` in
one place (`chalicelib/routing.py`); the session host turns it into a failed `Reply` in one place
(`session_host/dispatch.py`), which the API then renders the same way. The message is WaGo's own
wording where WaGo has one (research/wago-api.md §1.3, §2.1).
"""

from __future__ import annotations


class DomainError(Exception):
    """A client-visible failure: `status` is the HTTP status (400..599), `message` WaGo's error text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"DomainError({self.status}, {self.message!r})"
