"""One parser for every URL the gateway stores or fetches (webhook URLs, `/send/mediaurl`, link previews).

Python's `urlsplit` and httpx disagree on broken URLs (`http://h:abc/` is a ValueError in one and an
InvalidURL in the other; `http://h:99999/` passes httpx; `http://h:١٢/` is port 12 to httpx), so a
URL accepted at the API could fail later inside the session host or at every webhook attempt. This
module decides once, strictly (RFC 3986 §3.2), and returns the URL in a normal form every later
parser reads the same way:

- scheme `http` or `https` (any case in, lower case out);
- a host: a DNS name (ASCII labels of letters, digits, `-`, `_`, 1..63 characters, 253 in all;
  internationalised names are converted to their IDNA A-labels), an IPv4 address, or an IPv6
  address in brackets (no zone id: it names an interface of the sending machine);
- an optional port of 1..5 ASCII digits from 1 to 65535;
- no spaces, control characters or backslashes anywhere; at most `MAX_URL_LENGTH` characters.

Errors are `InvalidUrl(reason)`; the API turns them into `Invalid <Field> in Payload: <reason>`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

MAX_URL_LENGTH = 2048
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


class InvalidUrl(ValueError):
    """The text is not an absolute http(s) URL the gateway can store or fetch."""


@dataclass(frozen=True)
class ParsedUrl:
    url: str  # the normal form: what is stored and fetched
    scheme: str
    host: str  # lower case; IDNA A-labels; an IPv6 address (as written) without brackets
    port: int  # explicit, or the scheme's default


def parse_http_url(value: str) -> ParsedUrl:
    """`value` -> ParsedUrl; InvalidUrl with the reason otherwise."""
    value = value.strip()
    if not value:
        raise InvalidUrl("must not be empty")
    if len(value) > MAX_URL_LENGTH:
        raise InvalidUrl(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidUrl("must not contain spaces or control characters")
    if "\\" in value:
        # Not a URL character (RFC 3986); WHATWG parsers (browsers, Node) read it as `/`, so
        # `http://10.0.0.8\@example.com/` would name 10.0.0.8 to them and example.com to us.
        raise InvalidUrl("must not contain a backslash (write it as %5C)")
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # unbalanced brackets
        raise InvalidUrl(f"cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not value[len(scheme):].startswith("://"):
        raise InvalidUrl("must be an absolute http:// or https:// URL")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        raw_host, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise InvalidUrl("has an unclosed [ in its host")
        host = _ipv6(raw_host)
        shown_host = f"[{host}]"
        if after and not after.startswith(":"):
            raise InvalidUrl(f"has {after!r} after its host")
        port_text = after[1:]
    else:
        raw_host, _, port_text = hostport.partition(":")
        host = shown_host = _name_or_ipv4(raw_host)
    default = 443 if scheme == "https" else 80
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
            raise InvalidUrl(f"port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    else:
        port = default
    netloc = userinfo + at + shown_host + (f":{port}" if port != default else "")
    url = urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))
    return ParsedUrl(url=url, scheme=scheme, host=host, port=port)


def _ipv6(text: str) -> str:
    if "%" in text:
        raise InvalidUrl("an IPv6 zone id (%...) names an interface of this machine, not a host")
    try:
        ipaddress.IPv6Address(text)
        return text.lower()
    except ValueError:
        raise InvalidUrl(f"[{text}] is not an IPv6 address") from None


def _name_or_ipv4(text: str) -> str:
    if not text:
        raise InvalidUrl("has no host")
    host = text.lower().rstrip(".") if text != "." else ""
    if not host:
        raise InvalidUrl("has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidUrl(f"host {text!r} is not a valid internationalised domain name") from None
    if len(host) > 253:
        raise InvalidUrl("host is longer than 253 characters")
    for label in host.split("."):
        if not _LABEL.match(label):
            raise InvalidUrl(f"host {text!r} is not a valid host name")
        if label.startswith("xn--"):
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                raise InvalidUrl(f"host {text!r} has a malformed IDNA label {label!r}") from None
    return host
