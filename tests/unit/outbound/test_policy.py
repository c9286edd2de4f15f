"""The outbound destination policy, judged on addresses alone (no connection is made).

Cloud-metadata and link-local addresses in every spelling an attacker could use
(IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo IPv6 forms), private ranges in strict
mode, deny beating allow, and allow re-allowing what the mode blocks.
"""

from __future__ import annotations

import ipaddress

import pytest

from server.config import load_settings
from server.errors import ConfigurationError
from server.outbound.errors import OutboundBlocked
from server.outbound.policy import OutboundPolicy, embedded_forms, parse_address, parse_rule

DEFAULT = OutboundPolicy()
STRICT = OutboundPolicy("strict")

METADATA_AND_LINK_LOCAL = [
    "169.254.169.254",  # AWS, GCP, Azure, Oracle metadata
    "169.254.0.1",
    "169.254.170.2",  # ECS task metadata
    "fd00:ec2::254",  # AWS metadata over IPv6
    "100.100.100.200",  # Alibaba Cloud metadata
    "168.63.129.16",  # Azure WireServer
    "fe80::1",
    "fe80::a9fe:a9fe",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:a9fe:a9fe",  # the same, in hex
    "::169.254.169.254",  # IPv4-compatible (deprecated, still parsed)
    "64:ff9b::169.254.169.254",  # NAT64 well-known prefix
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (RFC 8215)
    "::ffff:0:a9fe:a9fe",  # SIIT IPv4-translated (RFC 2765)
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378::5601:5601",  # Teredo whose client is 169.254.169.254
]
OTHER_ALWAYS_BLOCKED = [
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "::ffff:0.0.0.0",
    "::ffff:224.0.0.1",
]
PRIVATE_AND_LOOPBACK = [
    "127.0.0.1",
    "127.0.0.2",
    "127.255.255.254",
    "::1",
    "::ffff:127.0.0.1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "100.127.255.255",
    "fc00::1",
    "fd12:3456::1",
    "::ffff:10.1.2.3",
    "::ffff:192.168.0.1",
    "64:ff9b::10.0.0.1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2001:4860:4860::8888"]


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return parse_address(text)


@pytest.mark.parametrize("address", METADATA_AND_LINK_LOCAL + OTHER_ALWAYS_BLOCKED)
@pytest.mark.parametrize("policy", [DEFAULT, STRICT], ids=["default", "strict"])
def test_metadata_link_local_and_reserved_are_blocked_in_every_mode(
    policy: OutboundPolicy, address: str
) -> None:
    with pytest.raises(OutboundBlocked, match=r"outbound.mode") as caught:
        policy.check_address(ip(address))
    assert str(ip(address)) in caught.value.message
    assert caught.value.retryable is False


@pytest.mark.parametrize("address", PRIVATE_AND_LOOPBACK + PUBLIC)
def test_default_mode_allows_loopback_private_and_public(address: str) -> None:
    DEFAULT.check_address(ip(address))


@pytest.mark.parametrize("address", PRIVATE_AND_LOOPBACK)
def test_strict_mode_blocks_private_ranges_and_loopback(address: str) -> None:
    with pytest.raises(OutboundBlocked, match=r"outbound.mode 'strict'"):
        STRICT.check_address(ip(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_strict_mode_allows_public_addresses(address: str) -> None:
    STRICT.check_address(ip(address))


def test_the_reason_names_the_range_and_how_to_allow_it() -> None:
    with pytest.raises(OutboundBlocked) as caught:
        DEFAULT.check_address(ip("169.254.169.254"), "metadata.google.internal")
    message = caught.value.message
    assert "169.254.169.254 (for metadata.google.internal)" in message
    assert "link-local" in message
    assert "169.254.0.0/16" in message
    assert "outbound.allow" in message


def test_an_ipv6_zone_is_dropped_before_judging() -> None:
    with pytest.raises(OutboundBlocked):
        DEFAULT.check_address(parse_address("fe80::1%lo"))


def test_embedded_forms_find_the_ipv4_inside() -> None:
    metadata = ipaddress.IPv4Address("169.254.169.254")
    for text in METADATA_AND_LINK_LOCAL[8:]:
        assert metadata in embedded_forms(ip(text)), text
    assert embedded_forms(ip("::1")) == [ip("::1")]  # loopback is not IPv4-compatible 0.0.0.1


def test_deny_blocks_an_address_the_mode_allows() -> None:
    policy = OutboundPolicy(deny=["127.0.0.2", "192.168.0.0/16"])
    with pytest.raises(OutboundBlocked, match=r"outbound.deny entry '127.0.0.2'"):
        policy.check_address(ip("127.0.0.2"))
    with pytest.raises(OutboundBlocked, match=r"outbound.deny"):
        policy.check_address(ip("::ffff:127.0.0.2"))  # the mapped form too
    with pytest.raises(OutboundBlocked, match=r"'192.168.0.0/16'"):
        policy.check_address(ip("192.168.44.1"))
    policy.check_address(ip("127.0.0.1"))


def test_deny_wins_over_allow() -> None:
    policy = OutboundPolicy(allow=["127.0.0.0/8", "api.example.com"], deny=["127.0.0.2"])
    policy.check_address(ip("127.0.0.3"))
    with pytest.raises(OutboundBlocked, match=r"outbound.deny"):
        policy.check_address(ip("127.0.0.2"))
    with pytest.raises(OutboundBlocked, match=r"outbound.deny"):
        policy.check_address(ip("127.0.0.2"), "api.example.com")


def test_allow_re_allows_what_the_mode_blocks() -> None:
    OutboundPolicy(allow=["169.254.169.254"]).check_address(ip("169.254.169.254"))
    OutboundPolicy(allow=["169.254.169.254"]).check_address(ip("::ffff:169.254.169.254"))
    strict = OutboundPolicy("strict", allow=["10.0.0.0/8", "localhost"])
    strict.check_address(ip("10.20.30.40"))
    strict.check_address(ip("127.0.0.1"), "localhost")  # allowed by name
    with pytest.raises(OutboundBlocked):
        strict.check_address(ip("127.0.0.1"))  # the same address under another name
    with pytest.raises(OutboundBlocked):
        strict.check_address(ip("192.168.0.1"))


def test_deny_by_name_exact_and_wildcard() -> None:
    policy = OutboundPolicy(deny=["Internal.Example.com.", "*.corp.example"])
    for name in (
        "internal.example.com",
        "INTERNAL.example.com.",
        "a.corp.example",
        "x.y.corp.example",
    ):
        with pytest.raises(OutboundBlocked, match=r"outbound.deny"):
            policy.check_name(name)
        with pytest.raises(OutboundBlocked, match=r"outbound.deny"):
            policy.check_address(ip("8.8.8.8"), name)
    for name in ("corp.example", "example.com", "other.example.com", "notcorp.example"):
        policy.check_name(name)
        policy.check_address(ip("8.8.8.8"), name)


async def test_a_denied_name_is_refused_before_it_is_resolved() -> None:
    policy = OutboundPolicy(deny=["localhost"])
    with pytest.raises(OutboundBlocked, match=r"destination localhost is blocked by outbound.deny"):
        await policy.resolve("localhost", 80)


async def test_ip_literals_are_checked_without_resolving() -> None:
    policy = OutboundPolicy(deny=["127.0.0.2"])
    assert await policy.resolve("127.0.0.1", 80) == ["127.0.0.1"]
    assert await policy.resolve("[::1]", 80) == ["::1"]
    with pytest.raises(OutboundBlocked, match=r"127.0.0.2"):
        await policy.resolve("127.0.0.2", 80)
    with pytest.raises(OutboundBlocked, match=r"link-local"):
        await policy.resolve("[::ffff:169.254.169.254]", 80)


async def test_every_resolved_address_is_checked() -> None:
    # localhost resolves locally (hosts file) to loopback; strict mode refuses it.
    with pytest.raises(OutboundBlocked, match=r"loopback"):
        await STRICT.resolve("localhost", 80)
    addresses = await DEFAULT.resolve("localhost", 80)
    assert addresses
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)


@pytest.mark.parametrize("entry", ["", "not a host", "10.0.0.0/33", "*.", "a..b", "http://x/"])
def test_a_bad_rule_names_its_setting(entry: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rule(entry, "outbound.deny")
    assert caught.value.key == "outbound.deny"


def test_rules_accept_addresses_networks_names_and_wildcards() -> None:
    assert parse_rule("10.0.0.1", "k").network == ipaddress.ip_network("10.0.0.1/32")
    assert parse_rule("10.1.0.0/16", "k").network == ipaddress.ip_network("10.1.0.0/16")
    assert parse_rule("fd00::/8", "k").network == ipaddress.ip_network("fd00::/8")
    assert parse_rule("API.example.com", "k").name == "api.example.com"
    assert parse_rule("*.example.com", "k").suffix == "example.com"


def test_settings_refuse_a_bad_entry_at_start() -> None:
    with pytest.raises(ConfigurationError, match=r"outbound.allow"):
        load_settings({"outbound.allow": "10.0.0.0/8, bad host"}, environ={})
    with pytest.raises(ConfigurationError, match=r"outbound.mode"):
        load_settings({"outbound.mode": "lenient"}, environ={})
    settings = load_settings({}, environ={"FLOWYARD_OUTBOUND_DENY": "127.0.0.2,*.internal"})
    assert settings.outbound.deny == ("127.0.0.2", "*.internal")
