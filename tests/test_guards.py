"""The daemon's limits without models: SDP checks, rate limits, the events channel guard,
call deadlines, the media rate guard, the resampler across a format change, and the
HTTP server's connection guard (slow-loris sockets) over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from aiohttp import web

from voxlive.audio.resample import Resampler
from voxlive.config.limits import ServerLimits
from voxlive.server.call_guard import (
    MAX_MISORDERED_CHUNKS,
    CallClock,
    EventsGuard,
    GuardedTrack,
    harden_data_channels,
    watch_reason,
)
from voxlive.server.connections import GUARDS, guard_middleware, install
from voxlive.server.guards import (
    OfferRefused,
    RateLimiter,
    check_offer_sdp,
    json_errors,
    parse_json_body,
)
from voxlive.server.ice import filter_remote_candidates

LIMITS = ServerLimits()
HEAD = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:CD\r\n"
AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
VIDEO = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"
DATA = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"


def test_offers_too_wide_or_unusable_are_refused() -> None:
    check_offer_sdp(HEAD + AUDIO + VIDEO + DATA, LIMITS)  # what a browser sends
    with pytest.raises(OfferRefused, match="m-lines"):
        check_offer_sdp(HEAD + AUDIO * 130, LIMITS)  # the m-line flood
    with pytest.raises(OfferRefused, match="2 audio m-lines"):
        check_offer_sdp(HEAD + AUDIO * 2, LIMITS)
    with pytest.raises(OfferRefused, match="fingerprint"):
        check_offer_sdp(HEAD.replace("a=fingerprint:sha-256 AB:CD\r\n", "") + AUDIO, LIMITS)
    with pytest.raises(OfferRefused, match="not supported"):
        check_offer_sdp(HEAD + AUDIO.replace("opus", "x-unknown"), LIMITS)


def test_rate_limiter_per_address_refills_and_stays_bounded() -> None:
    t = [0.0]
    limiter = RateLimiter(3, per_s=60, max_keys=100, clock=lambda: t[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another address has its own budget
    t[0] = 20.0
    assert limiter.allow("a") and not limiter.allow("a")
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._buckets) <= 100


def test_deep_json_is_a_value_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested"):
        parse_json_body("[" * 100_000 + "]" * 100_000)
    assert parse_json_body('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {
        "a": "[" * 38}  # brackets in strings do not count


def test_events_guard_bounds_size_rate_encoding_and_depth() -> None:
    t = [0.0]
    guard = EventsGuard(ServerLimits(messages_per_second=5), clock=lambda: t[0])
    assert guard.check('{"type": "ping"}') == ('{"type": "ping"}', None)
    _, error = guard.check("x" * 100_000)
    assert "too large" in error and len(error) < 100
    assert guard.check(b"\xff\xfe{")[1] == "messages must be UTF-8 JSON text"
    assert "nested" in guard.check("[" * 10_000)[1]
    outcomes = [guard.check('{"type": "ping"}') for _ in range(20)]
    errors = [e for _, e in outcomes if e]
    assert len(errors) == 1 and "too many" in errors[0]  # one rate error, the rest dropped
    assert sum(1 for text, _ in outcomes if text) < 10


def test_call_deadlines() -> None:
    limits = ServerLimits(connect_timeout_s=15, no_audio_timeout_s=60, max_call_s=600)
    clock = CallClock(started=0.0)
    assert watch_reason(clock, "connecting", limits, t=14.0) is None
    assert "did not connect within 15 s" in watch_reason(clock, "connecting", limits, t=15.0)
    assert "failed" in watch_reason(clock, "failed", limits, t=1.0)
    clock.connected = 2.0
    assert watch_reason(clock, "connected", limits, t=61.0) is None
    assert watch_reason(clock, "connected", limits, t=62.0) == "no audio for 60 s"
    clock.last_audio = 100.0
    assert watch_reason(clock, "connected", limits, t=159.0) is None
    clock.last_audio = 599.0
    assert "maximum duration" in watch_reason(clock, "connected", limits, t=600.0)


class FastTrack:
    """Audio frames as fast as they are asked for (15x real time and more)."""

    kind = "audio"

    async def recv(self) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = 48_000
        return frame


async def test_audio_faster_than_real_time_is_dropped_not_queued() -> None:
    clock = CallClock()
    track = GuardedTrack(FastTrack(), ServerLimits(max_audio_speed=1.5), clock)
    for _ in range(300):  # 6 s of audio, asked for at once
        await track.recv()  # each returns only once the budget allows a frame
        if clock.audio_dropped >= 200:
            break
    assert clock.audio_dropped >= 200  # the excess was dropped on arrival


class VideoTrack:
    kind = "video"

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(0.001)
        return av.VideoFrame(self.width, self.height, "yuv420p")


async def test_video_over_the_size_or_rate_cap_is_dropped() -> None:
    clock = CallClock()
    limits = ServerLimits(max_video_pixels=640 * 480, max_video_fps=10)
    small = GuardedTrack(VideoTrack(320, 240), limits, clock)
    kept = [await small.recv() for _ in range(3)]
    assert all(f.width == 320 for f in kept)
    assert clock.video_dropped > 0  # frames every ~1 ms, kept at most 10 a second

    huge = GuardedTrack(VideoTrack(4096, 4096), limits, clock)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(huge.recv(), 0.3)  # none passes


def frame(samples: np.ndarray, fmt: str, layout: str, rate: int) -> av.AudioFrame:
    f = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    f.sample_rate = rate
    return f


def test_resampler_survives_a_format_change_mid_stream() -> None:
    resampler = Resampler(16_000)
    out = [resampler.process_frame(frame(np.zeros((1, 1920), np.int16), "s16", "stereo",
                                         48_000)) for _ in range(10)]  # 0.2 s, stereo
    # the codec changes: 44.1 kHz mono float (used to raise "Frame does not match ...")
    out += [resampler.process_frame(frame(np.zeros((1, 882), np.float32), "flt", "mono",
                                          44_100)) for _ in range(10)]  # 0.2 s
    out += [resampler.process_frame(frame(np.zeros((1, 960), np.int16), "s16", "mono",
                                          48_000)) for _ in range(10)]  # 0.2 s
    out.append(resampler.flush())
    total = sum(len(o) for o in out)
    assert abs(total - 0.6 * 16_000) <= 64  # nothing lost or doubled at the switches


def test_ice_candidates_beyond_loopback_are_bounded() -> None:
    lines = "".join(f"a=candidate:{i} 1 udp 1 10.0.{i // 200}.{i % 200 + 1} 40000 typ host\r\n"
                    for i in range(100))
    bad = ("a=candidate:x 1 udp 1 224.0.0.1 40000 typ host\r\n"
           "a=candidate:y 1 udp 1 192.168.1.9 53 typ host\r\n"
           "a=candidate:z 1 udp 1 0.0.0.0 40000 typ host\r\n")
    bad += "a=candidate:w 1 udp 1 10.1.1.1 65536 typ host\r\n"  # a fuzzed port
    kept = filter_remote_candidates(HEAD + AUDIO + bad + lines, loopback_only=False)
    assert kept.count("a=candidate") == 16
    assert "224.0.0.1" not in kept and " 53 typ" not in kept and "0.0.0.0" not in kept
    assert "65536" not in kept
    local = "a=candidate:v 1 udp 1 127.0.0.1 99999 typ host\r\n"
    assert "99999" not in filter_remote_candidates(HEAD + AUDIO + local, loopback_only=True)


# --- the HTTP server's connections ------------------------------------------------------


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@contextlib.asynccontextmanager
async def guarded_server(max_connections: int, header_timeout_s: float
                         ) -> AsyncIterator[tuple[str, int]]:
    app = web.Application(middlewares=[json_errors, guard_middleware])
    app[GUARDS] = []
    app.router.add_get("/healthz", _ok)
    app.router.add_get("/boom", _boom)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    install(runner, max_connections, header_timeout_s)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within_s) == b""
    except TimeoutError:
        return False


async def test_a_slow_loris_socket_is_closed_and_idle_floods_do_not_lock_out_healthz() -> None:
    async with guarded_server(max_connections=8, header_timeout_s=0.5) as (url, port):
        # headers sent a byte at a time, never finished
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        loris = asyncio.ensure_future(closed_by_server(reader, within_s=20))
        for ch in b"st: x\r\nX-Slow: 1":
            await asyncio.sleep(0.1)
            if loris.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(bytes([ch]))
        assert await loris
        writer.close()

        # 40 idle sockets against a cap of 8: /healthz still answers
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as r:
            assert r.status == 200
        for _, w in idle:
            w.close()


async def test_every_error_answers_json() -> None:
    async with guarded_server(max_connections=16, header_timeout_s=5) as (url, _), \
            aiohttp.ClientSession() as http:
        for path, status in (("/nowhere", 404), ("/boom", 500)):
            async with http.get(f"{url}{path}") as r:
                assert r.status == status and r.content_type == "application/json"
                body = json.loads(await r.text())
                assert "error" in body and "Traceback" not in body["error"]
        async with http.post(f"{url}/healthz") as r:
            assert r.status == 405 and r.content_type == "application/json"


def _sctp_receiver() -> Any:
    """aiortc's SCTP transport, as far as receiving DATA chunks goes (no DTLS under it)."""
    from aiortc.rtcsctptransport import RTCSctpTransport

    sctp = RTCSctpTransport.__new__(RTCSctpTransport)
    sctp._sack_needed = False
    sctp._last_received_tsn = 0
    sctp._sack_misordered = set()
    sctp._sack_duplicates = []
    sctp._inbound_streams = {}
    sctp._advertised_rwnd = 1024 * 1024
    sctp._reconfig_deferred = None
    sctp.delivered = []

    async def receive(stream_id: int, pp_id: int, data: bytes) -> None:
        sctp.delivered.append(data)

    sctp._receive = receive
    return sctp


def _data_chunk(tsn: int, seq: int, flags: int, data: bytes) -> Any:
    from aiortc.rtcsctptransport import WEBRTC_STRING, DataChunk

    chunk = DataChunk(flags=flags)
    chunk.tsn, chunk.stream_id, chunk.stream_seq, chunk.protocol = tsn, 1, seq, WEBRTC_STRING
    chunk.user_data = data
    return chunk


async def test_data_channel_fragments_past_the_receive_window_are_not_held() -> None:
    """A peer that sends first fragments and never the last held the daemon's memory at
    line rate (aiortc advertised a window and never enforced it)."""
    from aiortc.rtcsctptransport import SCTP_DATA_FIRST_FRAG, SCTP_DATA_LAST_FRAG

    harden_data_channels()
    sctp = _sctp_receiver()
    piece = b"x" * 1200
    for tsn in range(1, 3001):  # 3.6 MB of one message that never ends
        await sctp._receive_data_chunk(_data_chunk(
            tsn, 0, SCTP_DATA_FIRST_FRAG if tsn == 1 else 0, piece))
    held = sum(len(c.user_data) for c in sctp._inbound_streams[1].reassembly)
    assert held <= 1024 * 1024 and sctp._advertised_rwnd >= 0
    # past a gap (TSN 3001 never comes), held chunks are capped in number too
    sctp = _sctp_receiver()
    await sctp._receive_data_chunk(_data_chunk(1, 0, SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG,
                                               b'{"type": "ping"}'))
    for tsn in range(3, 10_003):
        await sctp._receive_data_chunk(_data_chunk(
            tsn, tsn - 1, SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG, b"{}"))
    assert len(sctp._sack_misordered) <= MAX_MISORDERED_CHUNKS
    assert sctp.delivered == [b'{"type": "ping"}']
    # the chunk that fills the gap is always taken, and the held ones drain behind it
    await sctp._receive_data_chunk(_data_chunk(2, 1, SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG,
                                               b'{"type": "late"}'))
    assert sctp.delivered[1] == b'{"type": "late"}'
    assert len(sctp.delivered) == 2 + MAX_MISORDERED_CHUNKS and not sctp._sack_misordered
    # a well-behaved peer: whole messages in order are all delivered
    sctp = _sctp_receiver()
    for tsn in range(1, 2001):
        await sctp._receive_data_chunk(_data_chunk(
            tsn, tsn - 1, SCTP_DATA_FIRST_FRAG | SCTP_DATA_LAST_FRAG, b"m" * 1000))
    assert len(sctp.delivered) == 2000 and sctp._advertised_rwnd == 1024 * 1024


def test_beyond_loopback_a_peer_s_check_sources_are_policed() -> None:
    """An authenticated check from a new source becomes a candidate the daemon sends
    checks to: only sources `may_contact` allows, and at most MAX_REMOTE_CANDIDATES of
    them per connection; unauthenticated checks are answered with an error and do not
    use up the allowance."""
    import aioice.ice
    from aioice import stun

    from voxlive.server.ice import MAX_REMOTE_CANDIDATES, _policed_request_received

    connection = aioice.ice.Connection(ice_controlling=True)
    connection.remote_username, connection.remote_password = "peer", "peer-password-0123456789"
    sent: list[tuple[int, tuple[str, int]]] = []

    class Recorder:
        def send_stun(self, message: Any, addr: tuple[str, int]) -> None:
            sent.append((message.message_class, addr))

    def check(addr: tuple[str, int], password: str) -> None:
        request = stun.Message(message_method=stun.Method.BINDING,
                               message_class=stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{connection.local_username}:peer"
        request.attributes["ICE-CONTROLLED"] = 1
        request.add_message_integrity(password.encode())
        _policed_request_received(connection, request, addr, Recorder())

    check(("198.51.100.7", 53), connection.local_password)  # a DNS port: ignored
    check(("127.0.0.1", 40000), connection.local_password)  # this host's loopback: ignored
    assert sent == []
    for n in range(30):  # unauthenticated, from many sources: errors, nothing learnt
        check((f"198.51.100.{n}", 40000), "wrong-password-0123456789")
    assert {kind for kind, _ in sent} == {stun.Class.ERROR}
    sent.clear()
    for n in range(MAX_REMOTE_CANDIDATES + 8):
        check((f"203.0.113.{n}", 40000), connection.local_password)
    answered = {addr for kind, addr in sent if kind == stun.Class.RESPONSE}
    assert len(answered) == MAX_REMOTE_CANDIDATES
    check(("203.0.113.0", 40000), connection.local_password)  # a known source: still answered
    assert sent[-1] == (stun.Class.RESPONSE, ("203.0.113.0", 40000))
