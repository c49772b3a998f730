"""Who the client of a request is, for the sign-in limits.

The TCP peer, unless the peer is a trusted proxy (`IOTLEDGER_TRUSTED_PROXIES`):
then `X-Forwarded-For` says, read from the right, since each proxy appends the
address it saw. The right-most address that is not itself a trusted proxy is
the first one no proxy of ours vouches for less: anything left of it is what
the client wrote, and any client can write anything there.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import Any

from litestar import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def client_address(request: Request[Any, Any, Any], trusted_proxies: Sequence[str]) -> str:
    peer = request.client.host if request.client else UNKNOWN
    trusted = _networks(tuple(trusted_proxies))
    if not _within(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getall("x-forwarded-for", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    untrusted = [hop for hop in hops if not _within(hop, trusted)]
    if untrusted:
        return untrusted[-1]
    return hops[0] if hops else peer


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.removeprefix("[").partition("]")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
