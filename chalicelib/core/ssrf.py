"""SSRF guard for webhook URLs.

A webhook URL is chosen by a tenant, and the fan-out POSTs to it from inside our network, so it must
not reach private, loopback, link-local or cloud-metadata addresses. Two checks:

- when the URL is set (`POST /webhook`): literal addresses (including legacy IPv4 forms such as
  `2130706433` or `0x7f.1`) and names that are local by definition (`localhost`, `*.localhost`,
  metadata host names). No DNS lookup: the answer could change before delivery anyway;
- at delivery: the host is resolved, every address must pass, and the connection is pinned to the
  checked address (no second lookup, so DNS rebinding cannot swap in another one).

Exemptions: `WEBHOOK_ALLOWED_HOSTS` (exact names or `*.suffix`), `WEBHOOK_ALLOWED_CIDRS`, and
`WEBHOOK_ALLOW_LOOPBACK` (default on only in the local and test stages).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.core.settings import Settings, get_settings

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
    allow_loopback: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Guard":
        settings = settings or get_settings()
        hosts = tuple(h.strip().lower().rstrip(".") for h in settings.webhook_allowed_hosts.split(",") if h.strip())
        cidrs = [c.strip() for c in settings.webhook_allowed_cidrs.split(",") if c.strip()]
        networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        return cls(settings.webhook_loopback_allowed, hosts, networks)

    # -- checks -----------------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for entry in self.allowed_hosts:
            if entry.startswith("*.") and (host.endswith(entry[1:]) or host == entry[2:]):
                return True
            if host == entry:
                return True
        return False

    def address_problem(self, ip: IPAddress) -> str | None:
        """Why this address is refused, or None if it may be contacted."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.allowed_networks):
            return None
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
        if ip.is_private:
            return "a private address"
        if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
            return "a shared (carrier-grade NAT) address"
        if not ip.is_global:
            return "a reserved address"
        return None

    def check_url(self, url: str) -> None:
        """Set-time check, without DNS. Raises BlockedDestination with a precise reason."""
        host = _hostname(url)
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
        parts = urlsplit(url)
        host = _hostname(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
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
            ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
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


_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _hostname(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise BlockedDestination("the URL has no host")
    return host.lower().rstrip(".")


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
