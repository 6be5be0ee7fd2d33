"""One call's limits: its deadlines, its media rates, its events channel.

Found by probing: a call that never connects kept its slot forever (16 such offers
locked the daemon into 503); a silent call never ended; audio sent at 15x real time
burned 15 CPU-seconds in 20 s; one 100k-deep JSON message, invalid UTF-8 or a huge
`type` killed the events channel while the page still showed `connected`.
- `GuardedTrack` wraps a remote track for the pumps: it drops audio arriving faster
  than `max_audio_speed` x real time (dropped, not queued) and video frames over the
  resolution or frame-rate cap, and notes when media last arrived.
- `watch_call` ends a call, with an `error` event and a `call_ended` reason, when it
  has not connected within `connect_timeout_s`, has run `max_call_s`, or has had no
  audio for `no_audio_timeout_s`.
- `EventsGuard` bounds the events channel: message size, rate, UTF-8, JSON depth;
  its error replies never echo more than a few bytes of the message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import rtcsctptransport
from aiortc.mediastreams import MediaStreamError

from voxlive.config.limits import ServerLimits
from voxlive.server.guards import LogLimiter, TokenBucket, json_depth_exceeds

log = logging.getLogger(__name__)

AUDIO_BURST_S = 5.0
"""Audio that may arrive ahead of real time at once. The budget is spent when the pump
pulls a frame, so after the event loop stalls (a busy machine) the frames queued
meanwhile come out at once: a stall of up to this long loses no audio, while a client
sending 15x real time gets this much once and `max_audio_speed` after."""


@dataclass
class CallClock:
    """When a call started, connected and last received media (monotonic seconds)."""

    started: float = field(default_factory=time.monotonic)
    connected: float | None = None
    last_audio: float | None = None
    audio_dropped: int = 0
    video_dropped: int = 0


class GuardedTrack:
    """The part of a remote MediaStreamTrack the pumps use (`kind`, `recv`), with limits."""

    def __init__(self, track: Any, limits: ServerLimits, clock: CallClock):
        self.track = track
        self.kind = track.kind
        self.limits = limits
        self.clock = clock
        self._audio = TokenBucket(AUDIO_BURST_S, limits.max_audio_speed)  # seconds of audio
        self._last_video = 0.0

    async def recv(self) -> Any:
        while True:
            frame = await self.track.recv()
            t = time.monotonic()
            if self.kind == "audio":
                self.clock.last_audio = t
                if self._take_audio(frame):
                    return frame
                self.clock.audio_dropped += 1
            elif self._keep_video(frame, t):
                return frame
            else:
                self.clock.video_dropped += 1

    def _take_audio(self, frame: Any) -> bool:
        rate = getattr(frame, "sample_rate", 0) or 48_000
        return self._audio.take(frame.samples / rate)

    def _keep_video(self, frame: Any, t: float) -> bool:
        if frame.width * frame.height > self.limits.max_video_pixels:
            return False
        if t - self._last_video < 0.9 / self.limits.max_video_fps:
            return False
        self._last_video = t
        return True


def watch_reason(clock: CallClock, state: str, limits: ServerLimits,
                 t: float | None = None) -> str | None:
    """Why the call must end now, or None."""
    t = time.monotonic() if t is None else t
    if clock.connected is None:
        if state in ("failed", "closed"):
            return f"the connection {state} before it was established"
        if t - clock.started >= limits.connect_timeout_s:
            return f"the call did not connect within {limits.connect_timeout_s:g} s"
        return None
    if t - clock.started >= limits.max_call_s:
        return f"the call reached its maximum duration ({limits.max_call_s:g} s)"
    heard = clock.last_audio if clock.last_audio is not None else clock.connected
    if t - max(heard, clock.connected) >= limits.no_audio_timeout_s:
        return f"no audio for {limits.no_audio_timeout_s:g} s"
    return None


async def watch_call(clock: CallClock, state: Callable[[], str], limits: ServerLimits,
                     end: Callable[[str], Awaitable[None]]) -> None:
    """Polls the call's deadlines; calls `end(reason)` once and returns."""
    period = min(1.0, limits.connect_timeout_s / 4, limits.no_audio_timeout_s / 4)
    while True:
        await asyncio.sleep(period)
        if state() == "connected" and clock.connected is None:
            clock.connected = time.monotonic()
        reason = watch_reason(clock, state(), limits)
        if reason is not None:
            await end(reason)
            return


class EventsGuard:
    """Checks each message on the events channel before the session sees it."""

    def __init__(self, limits: ServerLimits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._messages = TokenBucket(2 * limits.messages_per_second,
                                     limits.messages_per_second, clock)
        self._last_rate_error = -1e9
        self.dropped = 0

    def check(self, message: str | bytes) -> tuple[str | None, str | None]:
        """(text for the session, None) or (None, error to send back, or None: silent drop)."""
        if not self._messages.take():
            self.dropped += 1
            t = self._clock()
            if t - self._last_rate_error < 1.0:
                return None, None  # one rate error a second, not one per message
            self._last_rate_error = t
            return None, (f"too many messages (limit {self.limits.messages_per_second:g} "
                          "a second); some were dropped")
        size = len(message)
        if size > self.limits.max_message_bytes:
            return None, (f"message too large ({size} bytes; limit "
                          f"{self.limits.max_message_bytes})")
        if isinstance(message, bytes):
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError:
                return None, "messages must be UTF-8 JSON text"
        if json_depth_exceeds(message, self.limits.max_json_depth):
            return None, f"JSON nested deeper than {self.limits.max_json_depth} levels"
        return message, None



async def pump_guarded(pump: Callable[[Any], Awaitable[None]], track: GuardedTrack,
                       on_dead: Callable[[str], Awaitable[None]]) -> None:
    """Run a media pump; if it dies of anything but the track ending, end the call."""
    try:
        await pump(track)
    except (asyncio.CancelledError, MediaStreamError):
        raise
    except Exception as exc:
        await on_dead(f"the {track.kind} input failed: {type(exc).__name__}: {str(exc)[:200]}")


_SCTP_ERRORS = LogLimiter(period_s=5.0)
_original_receive = rtcsctptransport.RTCSctpTransport._data_channel_receive


async def _tolerant_receive(self: Any, stream_id: int, pp_id: int, data: bytes) -> None:
    """aiortc decodes text messages as UTF-8 inside its SCTP receive loop: one invalid
    message raised there and silently killed the channel. Hand such text on as bytes
    (EventsGuard answers it), and keep a malformed channel-open message from ending
    the association."""
    channels = self._data_channels
    if pp_id == rtcsctptransport.WEBRTC_STRING and stream_id in channels:
        try:
            data.decode("utf8")
        except UnicodeDecodeError:
            channels[stream_id].emit("message", bytes(data))
            return
    try:
        await _original_receive(self, stream_id, pp_id, data)
    except Exception as exc:
        if _SCTP_ERRORS.should_log("dcep"):
            log.warning("ignored a malformed data channel message: %s", type(exc).__name__)


_original_data_chunk = rtcsctptransport.RTCSctpTransport._receive_data_chunk
MAX_MISORDERED_CHUNKS = 4096
"""DATA chunks held past a gap in the peer's sequence (each a number in a set): a peer
that never fills the gap must not grow the set with every chunk it sends."""


async def _windowed_data_chunk(self: Any, chunk: Any) -> None:
    """aiortc tells the peer a receive window (1 MiB) and counts the bytes it holds for
    reassembly against it, but never holds the peer to it: a caller that sends first
    fragments and never the last grew the daemon's memory at line rate for the whole
    call. A chunk past the window, or past `MAX_MISORDERED_CHUNKS` held after a gap
    (but never the one that fills the gap, so the held ones can drain), is dropped
    unacknowledged, as SCTP allows (RFC 9260 6.2): a peer that keeps to the window sends
    it again once there is room, and messages are at most 16 KiB here."""
    fills_gap = chunk.tsn == rtcsctptransport.tsn_plus_one(self._last_received_tsn)
    if (len(chunk.user_data) > self._advertised_rwnd
            or (len(self._sack_misordered) >= MAX_MISORDERED_CHUNKS and not fills_gap)):
        if _SCTP_ERRORS.should_log("window"):
            log.warning("dropped data channel chunks past the receive window")
        return
    await _original_data_chunk(self, chunk)


def harden_data_channels() -> None:
    """Install `_tolerant_receive` and `_windowed_data_chunk` (per process, like the ICE
    policy; idempotent)."""
    rtcsctptransport.RTCSctpTransport._data_channel_receive = _tolerant_receive
    rtcsctptransport.RTCSctpTransport._receive_data_chunk = _windowed_data_chunk
