"""SSRF guard for every URL the gateway contacts for a tenant: webhook URLs and `/send/mediaurl`.

A webhook URL is chosen by a tenant, and the fan-out POSTs to it from inside our network (the session
host GETs a media URL the same way), so it must not reach private, loopback, link-local or
cloud-metadata addresses, nor any other address that is not globally reachable. Two checks:

- when the URL is set (`POST /webhook`): literal addresses (including legacy IPv4 forms such as
  `2130706433` or `0x7f.1`) and names that are local by definition (`localhost`, `*.localhost`,
  metadata host names). No DNS lookup: the answer could change before delivery anyway;
- at delivery: the host is resolved, every address must pass, and the connection is pinned to the
  checked address (no second lookup, so DNS rebinding cannot swap in another one).

Addresses are judged in two steps (`address_problem`):

1. an IPv6 address that carries an IPv4 address is judged by that IPv4 address: IPv4-mapped
   (`::ffff:0:0/96`, RFC 4291), IPv4-compatible (`::/96`, deprecated), IPv4-translated
   (`::ffff:0:0:0/96`, RFC 2765), the NAT64 well-known prefix (`64:ff9b::/96`, RFC 6052), 6to4
   (`2002::/16`, RFC 3056) and Teredo (`2001::/32`, RFC 4380: its server and its client). The
   local-use NAT64 prefix (`64:ff9b:1::/48`, RFC 8215) is refused outright: where its IPv4 part sits
   depends on the operator's prefix length;
2. every address must be globally reachable: the IANA IPv4 and IPv6 Special-Purpose Address
   Registries' entries that are not (`NON_GLOBAL`, including deprecated local ranges such as IPv6
   site-local `fec0::/10` and the 6to4 relay anycast `192.88.99.0/24`), and, for IPv6, anything
   outside the global unicast space `2000::/3`, are refused with the range's name.

The URL itself is parsed by chalicelib/core/urls.py, the same parser the API validated it with; a
URL it refuses (stored before that check existed) is a BlockedDestination, never a crash.

Exemptions: `WEBHOOK_ALLOWED_HOSTS` (exact names or `*.suffix`), `WEBHOOK_ALLOWED_CIDRS`, and
`WEBHOOK_ALLOW_LOOPBACK` (default on only in the local and test stages).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from chalicelib.core.settings import Settings, get_settings
from chalicelib.core.urls import InvalidUrl, ParsedUrl, parse_http_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # EC2/ECS/GCP/Azure/OpenStack instance metadata
        "169.254.170.2",  # ECS task metadata and credentials
        "169.254.169.253",  # Amazon-provided DNS
        "169.254.169.123",  # Amazon Time Sync
        "fd00:ec2::254",  # EC2 metadata over IPv6
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud metadata
    )
)
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


class BlockedDestination(Exception):
    """The webhook URL points somewhere the gateway must not send requests."""


@dataclass(frozen=True)
class Target:
    """Where one delivery connects: the checked address, and the name for Host/SNI."""

    host: str
    port: int
    address: str


@dataclass(frozen=True)
class Guard:
    """Which webhook destinations may be contacted: public addresses, plus the allowed hosts
    (exact, or `*.example.org`), CIDRs and, where enabled, loopback. Refusals raise BlockedDestination."""

    allow_loopback: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Guard:
        """The guard that WEBHOOK_ALLOWED_HOSTS, WEBHOOK_ALLOWED_CIDRS (comma-separated) and
        WEBHOOK_ALLOW_LOOPBACK describe."""
        settings = settings or get_settings()
        hosts = tuple(h.strip().lower().rstrip(".") for h in settings.webhook_allowed_hosts.split(",") if h.strip())
        cidrs = [c.strip() for c in settings.webhook_allowed_cidrs.split(",") if c.strip()]
        networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        return cls(settings.webhook_loopback_allowed, hosts, networks)

    # -- checks -----------------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        """True when `host` (case and a trailing dot ignored) is an allowed host or under an
        allowed `*.` wildcard (which also covers the bare domain)."""
        host = host.lower().rstrip(".")
        for entry in self.allowed_hosts:
            if entry.startswith("*.") and (host.endswith(entry[1:]) or host == entry[2:]):
                return True
            if host == entry:
                return True
        return False

    def address_problem(self, ip: IPAddress) -> str | None:
        """Why this address is refused (e.g. "a private address", "carries 10.0.0.1, a private
        address"), or None if it may be contacted."""
        if any(ip in net for net in self.allowed_networks):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            if ip in _LOCAL_NAT64:
                return "a local-use NAT64 address (64:ff9b:1::/48)"
            carried = embedded_ipv4(ip)
            for inner in carried:
                problem = self.address_problem(inner)
                if problem:
                    return f"an address that carries {inner}, {problem}"
            if carried:
                return None  # judged by what it carries: public IPv4 addresses
        if ip in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if ip.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if ip.is_unspecified:
            return "an unspecified address"
        if ip.is_link_local:
            return "a link-local address"
        if ip.is_multicast:
            return "a multicast address"
        for net, name in NON_GLOBAL:
            if ip.version == net.version and ip in net:
                return name
        if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
            return "a reserved address"
        if not ip.is_global:
            return "a reserved address"
        return None

    def check_url(self, url: str) -> None:
        """Set-time check, without DNS. Raises BlockedDestination with a precise reason."""
        host = _parse(url).host
        if self.host_allowed(host):
            return
        literal = literal_address(host)
        if literal is not None:
            problem = self.address_problem(literal)
            if problem:
                raise BlockedDestination(f"{host} is {problem}")
            return
        if host in LOOPBACK_NAMES or host.endswith(".localhost"):
            if not self.allow_loopback:
                raise BlockedDestination(f"{host} is a loopback address")
            return
        if host in METADATA_NAMES:
            raise BlockedDestination(f"{host} is a cloud metadata address")

    def resolve(self, url: str) -> Target:
        """Delivery-time check: resolve the host, refuse if any address is refused, pin the first."""
        parsed = _parse(url)
        host, port = parsed.host, parsed.port
        self.check_url(url)
        literal = literal_address(host)
        if literal is not None:
            return Target(host, port, str(literal))
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise OSError(f"cannot resolve {host}: no address")
        if not self.host_allowed(host):
            for ip in addresses:
                problem = self.address_problem(ip)
                if problem:
                    raise BlockedDestination(f"{host} resolves to {ip}, {problem}")
        return Target(host, port, str(addresses[0]))


_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

#: Special-purpose ranges that are not globally reachable (IANA IPv4/IPv6 Special-Purpose Address
#: Registries, "Globally Reachable: False", plus deprecated local ranges), by name. Checked after
#: loopback/link-local/multicast/unspecified, which have their own words.
NON_GLOBAL: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), name) for net, name in (
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a deprecated 6to4 relay anycast address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("255.255.255.255/32", "a broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("100::/64", "a discard-only address"),
        ("100:0:0:1::/64", "a dummy address"),
        ("2001::/23", "an IETF protocol assignment address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a segment routing (SRv6) address"),
        ("fc00::/7", "a private address"),
        ("fec0::/10", "a deprecated site-local address"),
    ))


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, translated, compatible, NAT64 well-known
    prefix, 6to4, Teredo server and client); [] for an IPv4 address or a plain IPv6 one."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _MAPPED or ip in _TRANSLATED or ip in _NAT64:
        return [low32]
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are the unspecified and loopback addresses
        return [low32]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [server, client]
    return []


def _parse(url: str) -> ParsedUrl:
    try:
        return parse_http_url(url)
    except InvalidUrl as exc:
        raise BlockedDestination(f"the URL {exc}") from None


def literal_address(host: str) -> IPAddress | None:
    """The address a host string denotes literally, including the forms inet_aton accepts."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return None
    return None
