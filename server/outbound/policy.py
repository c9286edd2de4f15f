"""Which destinations ``api`` and ``webhook`` nodes may call (SPEC §8 "Outbound calls").

A workflow author controls URLs, so without a policy a definition could make the server
fetch its cloud's metadata service (credentials) or probe the private network. The
policy is applied to **addresses after DNS resolution**, on every connection the HTTP
service opens (so on every redirect hop too), and the connection then goes to exactly
the address that was checked: there is no second lookup a DNS-rebinding attacker could
answer differently.

Rules, in order:

1. ``deny`` (IPs, CIDR networks, host names, ``*.suffix`` names) always wins.
2. ``allow`` (same forms) re-allows what the mode would block.
3. The mode: ``default`` blocks link-local, cloud-metadata, "this network", multicast,
   reserved and unspecified addresses, and allows loopback (the demo calls itself);
   ``strict`` also blocks private ranges, carrier-grade NAT and loopback.

An IPv6 address that embeds an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible,
6to4, NAT64 ``64:ff9b::/96``, Teredo) is judged as both, so ``::ffff:169.254.169.254`` is
as blocked as ``169.254.169.254``. A host name that resolves to several addresses is
refused when any of them is blocked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from server.errors import ConfigurationError
from server.outbound.errors import OutboundBlocked, OutboundUnreachable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Mode = Literal["default", "strict"]
MODES: tuple[Mode, ...] = ("default", "strict")

_net = ipaddress.ip_network

#: Blocked in every mode (unless allowed): (network, why).
ALWAYS_BLOCKED: tuple[tuple[IPNetwork, str], ...] = (
    (_net("169.254.0.0/16"), "link-local (cloud metadata lives here)"),
    (_net("fe80::/10"), "link-local"),
    (_net("fd00:ec2::254/128"), "cloud metadata (AWS IPv6)"),
    (_net("100.100.100.200/32"), "cloud metadata (Alibaba Cloud)"),
    (_net("168.63.129.16/32"), "cloud platform endpoint (Azure WireServer)"),
    (_net("0.0.0.0/8"), "'this network' (0.0.0.0/8)"),
    (_net("::/128"), "unspecified"),
    (_net("224.0.0.0/4"), "multicast"),
    (_net("ff00::/8"), "multicast"),
    (_net("240.0.0.0/4"), "reserved"),
    (_net("fec0::/10"), "site-local (deprecated)"),
)
#: Blocked in ``strict`` mode too.
STRICT_BLOCKED: tuple[tuple[IPNetwork, str], ...] = (
    (_net("127.0.0.0/8"), "loopback"),
    (_net("::1/128"), "loopback"),
    (_net("10.0.0.0/8"), "private"),
    (_net("172.16.0.0/12"), "private"),
    (_net("192.168.0.0/16"), "private"),
    (_net("100.64.0.0/10"), "carrier-grade NAT"),
    (_net("fc00::/7"), "private (unique local)"),
    (_net("192.0.0.0/24"), "IETF protocol assignments"),
    (_net("198.18.0.0/15"), "benchmarking"),
)
NAT64 = _net("64:ff9b::/96")
#: Local-use NAT64 (RFC 8215) and SIIT's IPv4-translated form (RFC 2765): both carry an
#: IPv4 address in their low 32 bits.
NAT64_LOCAL = _net("64:ff9b:1::/48")
IPV4_TRANSLATED = _net("::ffff:0:0:0/96")
IPV4_COMPATIBLE = _net("::/96")

_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``allow``/``deny`` entry: a network, an exact host name or a ``*.suffix``."""

    text: str
    network: IPNetwork | None = None
    name: str | None = None
    suffix: str | None = None

    def matches_address(self, address: IPAddress) -> bool:
        return self.network is not None and address in self.network

    def matches_name(self, host: str) -> bool:
        if self.name is not None:
            return host == self.name
        return self.suffix is not None and host.endswith("." + self.suffix)


def parse_rule(entry: str, key: str) -> Rule:
    """One setting entry as a :class:`Rule`; :class:`ConfigurationError` naming ``key``."""
    text = entry.strip()
    try:
        return Rule(text, network=ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    name = normalise_host(text)
    if name.startswith("*.") and _HOST_NAME.fullmatch(name[2:]):
        return Rule(text, suffix=name[2:])
    if _HOST_NAME.fullmatch(name):
        return Rule(text, name=name)
    raise ConfigurationError(
        key,
        f"{entry!r} is neither an IP address, a CIDR network (10.0.0.0/8), a host name "
        "(api.example.com) nor a wildcard name (*.example.com)",
    )


def parse_rules(entries: Iterable[str], key: str) -> tuple[Rule, ...]:
    return tuple(parse_rule(entry, key) for entry in entries)


def normalise_host(host: str) -> str:
    """Lower-case, without IPv6 brackets and without a trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".") if host != "." else host


def embedded_forms(address: IPAddress) -> list[IPAddress]:
    """``address`` and every IPv4 address it carries inside (mapped, 6to4, NAT64…)."""
    forms: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            forms.append(address.sixtofour)
        if address.teredo is not None:
            forms.extend(address.teredo)
        if (
            address in NAT64
            or address in NAT64_LOCAL
            or address in IPV4_TRANSLATED
            or (address in IPV4_COMPATIBLE and int(address) > 1)
        ):
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


def parse_address(text: str) -> IPAddress:
    """An IP address from resolver output (an IPv6 zone such as ``%eth0`` is dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


class OutboundPolicy:
    """Decides whether an address (reached for a host name) may be connected to."""

    def __init__(
        self, mode: str = "default", allow: Sequence[str] = (), deny: Sequence[str] = ()
    ) -> None:
        if mode not in MODES:
            raise ConfigurationError("outbound.mode", f"{mode!r} is not one of default, strict")
        self.mode = mode
        self.allow = parse_rules(allow, "outbound.allow")
        self.deny = parse_rules(deny, "outbound.deny")
        self.blocked = ALWAYS_BLOCKED + (STRICT_BLOCKED if mode == "strict" else ())

    def check_name(self, host: str) -> None:
        """Refuse a host name that ``deny`` names, before anything is resolved."""
        name = normalise_host(host)
        for rule in self.deny:
            if rule.matches_name(name):
                raise OutboundBlocked(
                    f"destination {name} is blocked by outbound.deny entry {rule.text!r}"
                )

    def check_address(self, address: IPAddress, host: str | None = None) -> None:
        """Raise :class:`OutboundBlocked` unless ``address`` (for ``host``) may be called."""
        name = normalise_host(host) if host is not None else None
        forms = embedded_forms(address)
        shown = str(address) if name in (None, str(address)) else f"{address} (for {name})"
        for rule in self.deny:
            if any(rule.matches_address(form) for form in forms) or (
                name is not None and rule.matches_name(name)
            ):
                raise OutboundBlocked(
                    f"destination {shown} is blocked by outbound.deny entry {rule.text!r}"
                )
        for rule in self.allow:
            if any(rule.matches_address(form) for form in forms) or (
                name is not None and rule.matches_name(name)
            ):
                return
        for form in forms:
            for network, why in self.blocked:
                if form in network:
                    inside = f" (it carries {form})" if form != address else ""
                    raise OutboundBlocked(
                        f"destination {shown}{inside} is blocked by outbound.mode {self.mode!r}: "
                        f"{why} addresses ({network}) are not called; an operator can "
                        "allow it with outbound.allow"
                    )

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, every one of them checked.

        Resolves with the event loop's ``getaddrinfo`` (off the loop's thread). Raises
        :class:`OutboundBlocked` when the name or any address is blocked, and
        :class:`OutboundUnreachable` when the name does not resolve.
        """
        name = normalise_host(host)
        self.check_name(name)
        try:
            literal: IPAddress | None = parse_address(name)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(literal, name)
            return [name]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (socket.gaierror, UnicodeError) as error:
            raise OutboundUnreachable(f"cannot resolve host {name!r}: {error}") from None
        addresses: list[str] = []
        for info in infos:
            text = str(info[4][0])
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise OutboundUnreachable(f"host {name!r} resolved to no address")
        for text in addresses:
            self.check_address(parse_address(text), name)
        return addresses
