"""ICE policy: which network addresses a call may use.

aiortc adds Google's public STUN server when no ICE servers are given, and aioice
offers host candidates on every interface except loopback. voxlive instead uses
only the STUN/TURN servers the config names, and when it listens on a loopback
address it offers loopback candidates only and ignores remote candidates that are
not loopback (in the offer, and as the source of connectivity checks), so a local
call sends packets to loopback addresses only. Beyond loopback (--host 0.0.0.0) it
still drops the remote candidates no call needs (`may_contact`) and caps their number,
in the offer and among the sources of the peer's checks.
"""

from __future__ import annotations

import ipaddress
import re

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from voxlive.config import IceServer
from voxlive.server.auth import is_loopback_host as is_loopback

_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) typ", re.IGNORECASE)
MAX_REMOTE_CANDIDATES = 16
"""Per offer, beyond loopback: each candidate costs connectivity checks from the daemon."""
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


def _policed_request_received(self, message, addr, protocol):  # noqa: ANN001, ANN202
    """Beyond loopback: ignore a check from a source `may_contact` refuses, and learn at
    most `MAX_REMOTE_CANDIDATES` sources per connection.

    An authenticated check from a new source makes it a (peer-reflexive) candidate that
    the daemon then sends checks to, for the whole call: without this, whoever holds
    the answer's ICE password (the caller) could aim those checks at privileged ports or
    at any number of addresses, past the filter on the offer's candidates. Checks that
    fail authentication are answered with an error as before and learn nothing, so
    they cannot use up the allowance of the real peer.
    """
    if not may_contact(addr[0], addr[1]):
        return None
    learned = self.__dict__.setdefault("_voxlive_sources", set())
    if addr not in learned and "MESSAGE-INTEGRITY" in message.attributes and \
            message.check_message_integrity(self.local_password.encode("utf8")):
        if len(learned) >= MAX_REMOTE_CANDIDATES:
            return None
        learned.add(addr)
    return _original_request_received(self, message, addr, protocol)


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
        aioice.ice.Connection.request_received = _policed_request_received
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


def may_contact(address: str, port: int) -> bool:
    """Beyond loopback: the remote addresses a call may send connectivity checks to.

    Not the unspecified, multicast, broadcast or reserved addresses, not this host's
    loopback, not an mDNS name (resolving it is a multicast query) and not a privileged
    port (< 1024, where DNS, SSH and the like listen): an offer must not turn the daemon
    into a packet cannon aimed at other services.
    """
    if port < 1024:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # a hostname or *.local
    bad = (ip.is_unspecified or ip.is_multicast or ip.is_reserved or ip.is_loopback
           or (ip.version == 4 and str(ip) == "255.255.255.255"))
    return not bad


def filter_remote_candidates(sdp: str, loopback_only: bool) -> str:
    """Drop the offer's candidates we must not contact: on loopback anything but loopback;
    beyond it what `may_contact` refuses, and candidates past MAX_REMOTE_CANDIDATES."""
    kept = []
    count = 0
    for line in sdp.splitlines():
        match = _CANDIDATE.match(line)
        if match:
            address, port = match.group(1), int(match.group(2))
            allowed = 0 < port < 65536 and (  # aioice would raise sending to port 65536
                is_loopback(address) if loopback_only
                else may_contact(address, port) and count < MAX_REMOTE_CANDIDATES)
            if not allowed:
                continue
            count += 1
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"
