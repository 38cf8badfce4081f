"""Which addresses a webhook may reach: public internet ones only, never the network the gateway runs in.

A webhook URL is chosen by any signed-in user, and the gateway POSTs to it from inside the deployment, with retries:
left unchecked, it is a way to reach the metadata server, the broker's admin port or any private service (SSRF).
So the URL is judged twice. At request time, without DNS, `non_public_reason` refuses hosts that are internal by
their form: IP literals in non-public ranges (in any spelling the C resolver accepts) and names that only resolve
inside a network. At delivery time, `vetted_addresses` resolves the name and refuses it when any address is not
public, and the caller connects to one of those very addresses, so a second lookup (DNS rebinding) cannot differ.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Well-known NAT64 (RFC 6052): on an IPv6-only network with DNS64, every IPv4-only receiver resolves into it, so it
# is judged by the IPv4 address it carries rather than refused as a whole.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: inside a provider's network
# What inet_aton may read as an IPv4 address (decimal, octal or hex parts); it also accepts trailing junk after a
# space, which no URL host has, so only these characters are handed to it.
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")
# Names that resolve only on a host or a private network, by standard (RFC 6761, RFC 6762, RFC 8375) or by ICANN's
# reservation of .internal for private use.
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


class NonPublicAddress(Exception):
    """The host resolves to at least one address outside the public internet."""


def is_public(address: IPAddress) -> bool:
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded)
    # `is_global` alone lets multicast through (224.0.0.0/4 and ff00::/8 are "global" to the ipaddress module).
    return address.is_global and not address.is_multicast and not address.is_reserved


def describe(address: IPAddress) -> str:
    """What kind of non-public address this is, for an error message."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return describe(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"  # 169.254.169.254, the cloud metadata server, among them
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "a unique-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    return "not a public address"


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names without any lookup; None for a name.

    Besides the standard forms, the C resolver reads legacy IPv4 spellings (`127.1`, `2130706433`, `0x7f.0.0.1`)
    as addresses: they are caught here so that they are judged as what they are, not as names."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def non_public_reason(host: str) -> str | None:
    """Why a URL's host cannot be a public receiver, judged by its form alone; None when it may be one (what a name
    resolves to is checked at delivery)."""
    address = literal_address(host)
    if address is not None:
        return None if is_public(address) else describe(address)
    name = host.rstrip(".").lower()  # "localhost." is "localhost"
    if name == "localhost" or name.endswith(_INTERNAL_SUFFIXES):
        return "a name that only resolves inside a network"
    if "." not in name:
        # A single label ("rabbitmq", "postgres") is found through search domains, /etc/hosts or a container
        # network's DNS: always an internal host, never one on the internet.
        return "a name that only resolves inside a network"
    return None


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order. asyncio runs getaddrinfo in its thread pool, so a
    slow DNS server never blocks the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


async def vetted_addresses(host: str, port: int, resolve: Resolver, *, allow_private: bool) -> list[IPAddress]:
    """The addresses to connect to for `host`. Raises NonPublicAddress if any of them is not public (unless
    `allow_private`): a name with one internal address among public ones is as dangerous as a wholly internal one,
    since which address is used is not ours to choose. Raises socket.gaierror when the name does not resolve."""
    addresses = await resolve(host, port)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise NonPublicAddress(host)
    return addresses


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and routes to (IPv4-mapped, 6to4, NAT64); None for any other."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
