"""The SSRF address policy: classification, resolution, and the submit-time literal check.

Nothing here connects anywhere: numeric notations go through the system resolver (glibc
parses them without DNS) and names go through the resolver seam.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest

from service.network.guard import (
    CLOUD_METADATA_NETWORKS,
    AddressPolicy,
    BlockedAddress,
    CredentialsInURL,
    check_url_host_literal,
    is_public_address,
    policy_for,
    resolve_checked,
)

# Teredo: server 65.54.227.120, client 127.0.0.1 stored XORed with ones (0x80fffffe).
TEREDO_LOOPBACK = "2001:0:4136:e378:8000:63bf:80ff:fffe"
TEREDO_PUBLIC = "2001:0:4136:e378:8000:63bf:f7f7:f7f7"  # client 8.8.8.8

# Host strings as they reach the connect step (no URL brackets), each meaning an address
# that must never be connected to under the default policy.
BLOCKED_HOSTS = [
    "127.0.0.1",
    "2130706433",  # decimal
    "0177.0.0.1",  # octal
    "0x7f.0.0.1",  # hex octet
    "0x7f000001",  # hex
    "127.1",  # short form
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped, dotted
    "::ffff:7f00:1",  # IPv4-mapped, hex
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1",  # NAT64 well-known prefix
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (3.11 says is_global)
    "64:ff9b:1::a00:1",  # local-use NAT64 prefix
    "2002:7f00:1::",  # 6to4 of 127.0.0.1 (3.11 says is_global)
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    TEREDO_LOOPBACK,
    "169.254.169.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT (3.11 says neither private nor global)
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "fe80::1",
    "fec0::1",  # site-local
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",  # global-scope multicast (is_global)
    "224.0.0.1",  # multicast (3.11 says is_global)
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "2001:db8::1",  # documentation
    "localhost",
]

PUBLIC_HOSTS = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", TEREDO_PUBLIC]


class StaticResolver:
    """The resolver seam: names from `table`; anything else does not exist."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
async def test_blocked_notations_are_refused_after_resolution(host: str) -> None:
    with pytest.raises(BlockedAddress) as info:
        await resolve_checked(host, 80, AddressPolicy())
    assert info.value.host == host
    assert not is_public_address(info.value.address)


async def test_localhost_from_the_hosts_file_is_refused() -> None:
    # "localhost" comes from /etc/hosts (no DNS query). glibc here does not map
    # "localhost." there, so that form is covered by the literal check below instead.
    with pytest.raises(BlockedAddress):
        await resolve_checked("LOCALHOST", 80, AddressPolicy())


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
async def test_public_addresses_are_allowed(host: str) -> None:
    assert await resolve_checked(host, 443, AddressPolicy()) == [host]
    assert is_public_address(host)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("::ffff:127.0.0.1", False),  # 3.11: not is_loopback
        ("64:ff9b::a9fe:a9fe", False),
        ("2002:7f00:1::", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        (TEREDO_LOOPBACK, False),
        (TEREDO_PUBLIC, True),
    ],
)
def test_is_public_address_sees_through_embedded_ipv4(address: str, public: bool) -> None:
    assert is_public_address(address) is public
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        f"http://[{TEREDO_LOOPBACK}]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0:8000/",
        "http://[::]/",
        "http://[fe80::1%25eth0]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://localhost:8000/",
        "http://localhost./",
        "http://api.localhost/",
        "https://LOCALHOST/",
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width 127.0.0.1: NFKC folds it
    ],
)
def test_literal_check_refuses_blocked_hosts(url: str) -> None:
    with pytest.raises(BlockedAddress):
        check_url_host_literal(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://8.8.8.8/",
        "http://[2606:4700::1111]:8080/x",
        "http://1e100.net/",
        "http://cafe.be/",
        "http://123.example/",
        "http://10.0.0.1.example.com/",  # a name, judged at connect time
    ],
)
def test_literal_check_passes_names_and_public_literals(url: str) -> None:
    check_url_host_literal(url)


@pytest.mark.parametrize(
    "url", ["http://user:pw@example.com/", "http://user@example.com/", "http://:@example.com/"]
)
def test_literal_check_refuses_credentials(url: str) -> None:
    with pytest.raises(CredentialsInURL):
        check_url_host_literal(url)


async def test_allow_list_admits_loopback_without_allow_private() -> None:
    policy = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    assert await resolve_checked("127.0.0.1", 80, policy) == ["127.0.0.1"]
    assert await resolve_checked("2130706433", 80, policy) == ["127.0.0.1"]
    assert await resolve_checked("::ffff:127.0.0.1", 80, policy) == ["::ffff:127.0.0.1"]
    check_url_host_literal("http://127.0.0.5:8000/", policy)
    # The allow-list is not allow_private: everything else private stays refused.
    for host in ["10.0.0.1", "::1", "169.254.169.254", "192.168.0.1"]:
        with pytest.raises(BlockedAddress):
            await resolve_checked(host, 80, policy)


async def test_allow_private_admits_private_but_denied_networks_win() -> None:
    policy = AddressPolicy(allow_private=True, denied_networks=CLOUD_METADATA_NETWORKS)
    for host in ["127.0.0.1", "10.0.0.1", "::1", "fe80::1", "100.64.0.1"]:
        assert await resolve_checked(host, 80, policy) == [host]
    for host in ["169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"]:
        with pytest.raises(BlockedAddress):
            await resolve_checked(host, 80, policy)
    # Denied beats allowed too.
    both = AddressPolicy(
        allowed_networks=(ipaddress.ip_network("169.254.0.0/16"),),
        denied_networks=CLOUD_METADATA_NETWORKS,
    )
    assert await resolve_checked("169.254.1.1", 80, both) == ["169.254.1.1"]
    with pytest.raises(BlockedAddress):
        await resolve_checked("169.254.169.254", 80, both)


async def test_one_private_record_among_public_ones_refuses_the_host() -> None:
    resolver = StaticResolver({"mixed.example": ["8.8.8.8", "2606:4700::1111", "10.1.2.3"]})
    policy = AddressPolicy(resolver=resolver)
    with pytest.raises(BlockedAddress) as info:
        await resolve_checked("mixed.example", 443, policy)
    assert (info.value.host, info.value.address) == ("mixed.example", "10.1.2.3")


async def test_resolver_seam_returns_checked_addresses_in_order_without_duplicates() -> None:
    resolver = StaticResolver(
        {"public.example": ["2606:4700::1111", "8.8.8.8", "2606:4700::1111", "1.1.1.1"]}
    )
    addresses = await resolve_checked("public.example", 443, AddressPolicy(resolver=resolver))
    assert addresses == ["2606:4700::1111", "8.8.8.8", "1.1.1.1"]
    assert resolver.calls == ["public.example"]


async def test_rebinding_name_to_loopback_is_refused() -> None:
    resolver = StaticResolver({"public.example": ["127.0.0.1"]})
    with pytest.raises(BlockedAddress):
        await resolve_checked("public.example", 80, AddressPolicy(resolver=resolver))


async def test_literals_skip_the_resolver() -> None:
    resolver = StaticResolver({})
    policy = AddressPolicy(resolver=resolver)
    assert await resolve_checked("8.8.8.8", 80, policy) == ["8.8.8.8"]
    assert await resolve_checked("[2606:4700::1111]", 80, policy) == ["2606:4700::1111"]
    assert resolver.calls == []


async def test_unknown_name_and_empty_answer_are_resolution_errors() -> None:
    policy = AddressPolicy(resolver=StaticResolver({"empty.example": []}))
    with pytest.raises(socket.gaierror):
        await resolve_checked("nowhere.example", 80, policy)
    with pytest.raises(socket.gaierror):
        await resolve_checked("empty.example", 80, policy)


async def test_garbage_from_the_resolver_is_refused() -> None:
    policy = AddressPolicy(resolver=StaticResolver({"odd.example": ["not-an-ip"]}))
    with pytest.raises(BlockedAddress):
        await resolve_checked("odd.example", 80, policy)


def test_policy_stays_hashable_and_comparable_with_a_resolver() -> None:
    a = AddressPolicy(resolver=StaticResolver({}))
    b = AddressPolicy()
    assert a == b
    assert hash(a) == hash(b)


# -- cloud metadata and this service's own API (issue 17, items 7 and 8) -----------------

METADATA = [
    "169.254.169.254",
    "169.254.170.2",
    "100.100.100.200",
    "168.63.129.16",
    "fd00:ec2::254",
    "fd20:ce::254",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
]


@pytest.mark.parametrize("host", METADATA)
async def test_cloud_metadata_is_refused_even_with_private_networks_allowed(host: str) -> None:
    policy = policy_for(allow_private=True)
    with pytest.raises(BlockedAddress):
        await resolve_checked(host, 80, policy)
    with pytest.raises(BlockedAddress):
        check_url_host_literal(f"http://[{host}]/" if ":" in host else f"http://{host}/", policy)
    assert await resolve_checked("10.0.0.1", 80, policy) == ["10.0.0.1"]


async def test_cloud_metadata_only_when_allowed_networks_names_it() -> None:
    policy = policy_for(
        allow_private=True, allowed_networks=(ipaddress.ip_network("169.254.169.254/32"),)
    )
    assert await resolve_checked("169.254.169.254", 80, policy) == ["169.254.169.254"]
    with pytest.raises(BlockedAddress):
        await resolve_checked("fd00:ec2::254", 80, policy)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.0.0.2", "127.8.9.10", "::1", "::ffff:127.0.0.2", "0.0.0.0", "::"],
)
@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "0.0.0.0", "::"])
async def test_own_api_is_refused_on_every_loopback_alias_and_the_wildcard(
    bind: str, address: str
) -> None:
    policy = policy_for(allow_private=True, host=bind, ports=(8123,))
    with pytest.raises(BlockedAddress, match="own API"):
        await resolve_checked(address, 8123, policy)
    assert await resolve_checked(address, 8124, policy) == [address]  # another port


async def test_own_api_on_a_bound_interface_address() -> None:
    policy = policy_for(allow_private=True, host="10.0.0.5", ports=(8000,))
    with pytest.raises(BlockedAddress, match="own API"):
        await resolve_checked("10.0.0.5", 8000, policy)
    with pytest.raises(BlockedAddress, match="own API"):
        check_url_host_literal("http://10.0.0.5:8000/v1/jobs", policy)
    assert await resolve_checked("10.0.0.6", 8000, policy) == ["10.0.0.6"]
    check_url_host_literal("http://10.0.0.5:8001/", policy)


def test_webhooks_use_the_same_own_api_guard() -> None:
    from service.settings import Settings
    from service.webhooks import WebhookDispatcher

    settings = Settings(host="0.0.0.0", port=8123, allow_private_networks=True)
    dispatcher = WebhookDispatcher(settings, store=None)  # type: ignore[arg-type]
    policy = dispatcher.sender.policy
    assert policy.own.covers("127.0.0.2", 8123) and policy.own.covers("::1", 8123)
    assert not policy.allows("169.254.169.254")
