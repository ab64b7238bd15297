"""SSRF address policy: which IP addresses the crawler may connect to.

The policy is enforced where it cannot be raced: the guarded transport's backend calls
`resolve_checked()` and connects to the very addresses it returns (DNS rebinding has no
window). `check_url_host_literal()` is a cheap, pure pre-check for the submit path.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""`async (host, port) -> addresses`: the seam tests use to simulate DNS rebinding."""

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215 local-use NAT64: the operator picks where the IPv4 sits, so nothing behind it
# can be judged; it is never public.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")

CLOUD_METADATA_NETWORKS: tuple[IPNetwork, ...] = (
    # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, Hetzner, Huawei, Linode, ...
    ipaddress.IPv4Network("169.254.169.254/32"),
    ipaddress.IPv4Network("169.254.170.2/32"),  # AWS ECS task metadata and credentials
    ipaddress.IPv4Network("169.254.0.23/32"),  # Tencent Cloud
    ipaddress.IPv4Network("100.100.100.200/32"),  # Alibaba Cloud
    ipaddress.IPv4Network("192.0.0.192/32"),  # Oracle Cloud (legacy)
    ipaddress.IPv4Network("168.63.129.16/32"),  # Azure WireServer (a public address!)
    ipaddress.IPv6Network("fd00:ec2::254/128"),  # AWS over IPv6
    ipaddress.IPv6Network("fd20:ce::254/128"),  # GCP over IPv6
)
"""Refused by every policy, private networks allowed or not, unless SCRAPER_ALLOWED_NETWORKS
names them: a job that reaches these reads the host's cloud credentials."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnEndpoints:
    """Where this service listens: connecting there would let a job drive its own API.

    Judged by what is listening, not by comparing a connection's two ends (a service on
    127.0.0.2 is reached from 127.0.0.1): on one of `ports`, every loopback address (all
    of 127/8 and ::1, also IPv4-mapped), the unspecified address (Linux delivers a
    connect to 0.0.0.0 locally) and the bound addresses are refused. With a wildcard bind
    the host's other addresses are caught after connecting (local == peer).
    """

    ports: frozenset[int] = frozenset()
    hosts: frozenset[IPAddress] = frozenset()

    @classmethod
    def listening(cls, host: str, ports: Iterable[int]) -> OwnEndpoints:
        bound: set[IPAddress] = set()
        for item in host.replace(",", " ").split():
            try:
                bound.add(_parse(item.strip("[]")))
            except ValueError:  # a name ("localhost"): loopback is refused anyway
                continue
        return cls(ports=frozenset(p for p in ports if p), hosts=frozenset(bound))

    def covers(self, address: str | IPAddress, port: int) -> bool:
        """Whether a connection to (address, port) would reach this service."""
        if port not in self.ports:
            return False
        ip = _parse(address) if isinstance(address, str) else address
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            candidates += _embedded_ipv4(ip)
        return any(c.is_loopback or c.is_unspecified or c in self.hosts for c in candidates)


class BlockedAddress(Exception):
    """The host resolves to an address the policy refuses."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host!r} resolves to refused address {address}")
        self.host = host
        self.address = address


class CredentialsInURL(ValueError):
    """The URL carries userinfo (user:password@); the crawler never sends credentials."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressPolicy:
    """Which addresses may be connected to; the default allows public addresses only."""

    allow_private: bool = False
    # Always allowed, even when allow_private is False (e.g. a local test site).
    allowed_networks: tuple[IPNetwork, ...] = ()
    # Always refused, even when allow_private is True.
    denied_networks: tuple[IPNetwork, ...] = ()
    # Refused unless allowed_networks names them (see CLOUD_METADATA_NETWORKS).
    metadata_networks: tuple[IPNetwork, ...] = CLOUD_METADATA_NETWORKS
    # This service's own listening endpoints (refused whatever else says).
    own: OwnEndpoints = field(default_factory=OwnEndpoints)
    # None: the event loop's getaddrinfo (glibc semantics for odd numeric forms).
    resolver: Resolver | None = field(default=None, compare=False, repr=False)

    def allows(self, address: str | IPAddress) -> bool:
        """Whether a connection to this (resolved) address is allowed."""
        ip = _parse(address) if isinstance(address, str) else address
        # An IPv6 wrapper is denied if it or the IPv4 inside is denied, and allowed if it,
        # or everything inside it, is allowed.
        embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
        if _in_any(ip, self.denied_networks) or any(
            _in_any(v4, self.denied_networks) for v4 in embedded
        ):
            return False
        explicitly_allowed = _in_any(ip, self.allowed_networks) or (
            embedded and all(_in_any(v4, self.allowed_networks) for v4 in embedded)
        )
        if explicitly_allowed:
            return True
        if _in_any(ip, self.metadata_networks) or any(
            _in_any(v4, self.metadata_networks) for v4 in embedded
        ):
            return False
        return self.allow_private or is_public_address(ip)


def is_public_address(ip: str | IPAddress) -> bool:
    """Whether an address is globally routable unicast, looking through IPv4 embeddings."""
    if isinstance(ip, str):
        ip = _parse(ip)
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    if ip in _NAT64_LOCAL_USE:
        return False
    embedded = _embedded_ipv4(ip)
    if embedded:
        # The IPv6 wrapper says nothing about where packets end up; the IPv4 inside does.
        return all(_is_public_v4(v4) for v4 in embedded)
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_link_local
        or ip.is_loopback
        or ip.is_private
        or ip.is_site_local
    )


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    # 3.11's is_global is True for multicast and is_private is False for CGNAT.
    return (
        ip.is_global
        and ip not in _CGNAT
        and not (
            ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
            or ip.is_link_local
            or ip.is_loopback
            or ip.is_private
        )
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address delivers to (mapped, compatible, 6to4, NAT64, Teredo)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.teredo is not None:
        server, client = ip.teredo  # the client address is already un-XORed
        return [server, client]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip in _IPV4_COMPATIBLE or ip in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _in_any(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _parse(address: str) -> IPAddress:
    # getaddrinfo may return a zone ("fe80::1%eth0"); the zone does not change the class.
    return ipaddress.ip_address(address.split("%", 1)[0])


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the running loop's getaddrinfo (a thread; glibc numeric forms apply)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_checked(host: str, port: int, policy: AddressPolicy) -> list[str]:
    """Resolve `host` and return its addresses, refusing if ANY of them is not allowed.

    Raises BlockedAddress, or socket.gaierror when the name does not resolve.
    """
    host = host.strip("[]")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        # A strict literal resolves to itself: no thread hop needed.
        addresses: Sequence[str] = [host]
    else:
        resolver = policy.resolver or system_resolver
        addresses = await resolver(host, port)
    checked = list(dict.fromkeys(addresses))  # de-duplicate, keep the resolver's order
    if not checked:
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} has no addresses")
    for address in checked:
        try:
            allowed = policy.allows(address)
            own = policy.own.covers(address, port)
        except ValueError:  # a resolver returning garbage is refused, not trusted
            allowed, own = False, False
        if own:
            raise BlockedAddress(host, f"{address} port {port} (this service's own API)")
        if not allowed:
            raise BlockedAddress(host, address)
    return checked


def check_url_host_literal(url: str, policy: AddressPolicy | None = None) -> None:
    """Refuse, without resolving, URLs with credentials or a host that is a refused address.

    Numeric hosts are read the way glibc reads them (`2130706433`, `0x7f.1`, `0177.0.0.1`
    are 127.x), and `localhost` names count as loopback. Raises CredentialsInURL,
    BlockedAddress, or ValueError for a malformed URL.
    """
    policy = policy or AddressPolicy()
    parts = urlsplit(url.strip())
    if parts.username is not None or parts.password is not None:
        raise CredentialsInURL(f"credentials in URL are not allowed: {url!r}")
    hostname = parts.hostname
    if not hostname:
        return
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        port = 0
    for ip in _literal_addresses(hostname):
        if policy.own.covers(ip, port):
            raise BlockedAddress(hostname, f"{ip} port {port} (this service's own API)")
        if not policy.allows(ip):
            raise BlockedAddress(hostname, str(ip))


def _literal_addresses(hostname: str) -> list[IPAddress]:
    host = unicodedata.normalize("NFKC", hostname).lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
    try:
        return [_parse(host)]
    except ValueError:
        pass
    # inet_aton is a pure parser of the BSD numeric forms glibc's getaddrinfo accepts.
    if host and all(c in "0123456789abcdefx." for c in host) and host[0].isdigit():
        try:
            return [ipaddress.IPv4Address(socket.inet_aton(host))]
        except OSError:
            pass
    return []


def policy_for(
    *,
    allow_private: bool,
    allowed_networks: tuple[IPNetwork, ...] = (),
    host: str = "127.0.0.1",
    ports: Iterable[int] = (),
) -> AddressPolicy:
    """The one policy for crawl fetches and webhooks alike, given where we listen."""
    return AddressPolicy(
        allow_private=allow_private,
        allowed_networks=allowed_networks,
        own=OwnEndpoints.listening(host, ports),
    )


def is_loopback_host(host: str) -> bool:
    """Whether a listening host (a name or an address, maybe in brackets) is loopback only."""
    if host.strip("[]").lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
