"""ICE policy: which network addresses a call may use.

aiortc adds Google's public STUN server when no ICE servers are given, and aioice
offers host candidates on every interface except loopback. voxlive instead uses
only the STUN/TURN servers the config names, and when it listens on a loopback
address it offers loopback candidates only and ignores remote candidates that are
not loopback (in the offer, and as the source of connectivity checks), so a local
call sends packets to loopback addresses only.
"""

from __future__ import annotations

import ipaddress
import re

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from voxlive.config import IceServer

_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ", re.IGNORECASE)
_original_get_host_addresses = aioice.ice.get_host_addresses
_original_request_received = aioice.ice.Connection.request_received


def _loopback_request_received(self, message, addr, protocol):  # noqa: ANN001, ANN202
    """Ignore connectivity checks from non-loopback sources.

    A browser may send its checks to our 127.0.0.1 candidate from a socket bound to
    one of this host's other addresses; answering would make that address a
    (peer-reflexive) candidate and media would flow to it.
    """
    if not is_loopback(addr[0]):
        return None
    return _original_request_received(self, message, addr, protocol)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname, including mDNS (*.local) names


def rtc_configuration(servers: list[IceServer]) -> RTCConfiguration:
    """An explicit (possibly empty) server list, so aiortc adds no default STUN server."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in servers
        ]
    )


def apply_host_policy(host: str) -> None:
    """When serving loopback, make aioice gather and accept loopback candidates only.

    aioice asks one module-level function for the host's addresses and one method
    handles incoming checks; the policy is per process, like the daemon's address.
    """
    if not is_loopback(host):
        aioice.ice.get_host_addresses = _original_get_host_addresses
        aioice.ice.Connection.request_received = _original_request_received
        return
    aioice.ice.Connection.request_received = _loopback_request_received

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = []
        if use_ipv4 and (host == "localhost" or host.startswith("127.")):
            addresses.append("127.0.0.1")
        if use_ipv6 and host in ("::1", "localhost"):
            addresses.append("::1")
        return addresses

    aioice.ice.get_host_addresses = loopback_addresses


def filter_remote_candidates(sdp: str, loopback_only: bool) -> str:
    """Drop the offer's candidates we must not contact (non-loopback, mDNS)."""
    if not loopback_only:
        return sdp
    kept = []
    for line in sdp.splitlines():
        match = _CANDIDATE.match(line)
        if match and not is_loopback(match.group(1)):
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"
