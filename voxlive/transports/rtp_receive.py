"""The receiving side of a call's audio without waiting: packets decoded as they come,
frames handed on as they come.

aiortc's receiver holds audio back: its jitter buffer (capacity 16, prefetch 4) hands a
packet to the decoder only once the four packets after it are in, which is 80 ms on every
frame before the VAD hears it (and 80 ms more in an aiortc caller hearing the reply).
Each Opus packet is a whole frame, so an in-order packet can be decoded at once.
`PassThroughAudioBuffer` does that; it drops a packet that comes after a later one
(reordered audio is rare; Opus conceals a missing frame) instead of waiting for it.

`DecodingAudioBuffer` goes one step further for many calls: it decodes the packet right
there, on the loop, and puts the frames in the track's queue. aiortc would hand each
packet to a decoder thread of the call's own, which sends each frame back to the loop as
a new task (`run_coroutine_threadsafe`): with many calls, thousands of thread hand-offs
a second fighting for the GIL, for a decode that takes a few tens of microseconds.
(The thread is still started by aiortc, and idles; it still ends the track at hang-up.)
It is off unless VOXLIVE_INLINE_DECODE=1: on this shared 2-core machine (load 15-25) the
daemon with it used less CPU but stalled more (gaps with the core idle), and no quiet run
settled it (issue 18 notes).

`FrameInbox` sits between the track and the VAD: a reader task moves each decoded frame in
as soon as aiortc hands it over, and the analyser takes everything waiting in one go, so a
burst of frames (after a network stall or a busy loop) reaches the VAD in one run instead
of queueing behind one VAD run per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from voxlive.audio.input import legacy_audio
from voxlive.latency import now

log = logging.getLogger(__name__)

_JITTER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"  # aiortc's private names
_CODECS_ATTRIBUTE = "_RTCRtpReceiver__codecs"
_MAPPER_ATTRIBUTE = "_RTCRtpReceiver__timestamp_mapper"


class PassThroughAudioBuffer:
    """A stand-in for aiortc's audio JitterBuffer (same `add` contract): every packet newer
    than the last one handed on is a frame to decode now."""

    capacity = 1

    def __init__(self) -> None:
        self._last: int | None = None  # sequence number of the last packet handed on
        self.dropped = 0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._last is not None and (seq - self._last) % 65536 >= 32768:
            self.dropped += 1  # older than what was already decoded (or a duplicate)
            return False, None
        if self._last is not None and seq == self._last:
            self.dropped += 1
            return False, None
        self._last = seq
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


class DecodingAudioBuffer(PassThroughAudioBuffer):
    """The pass-through buffer that also decodes, on the loop, into the track's queue
    (aiortc's RemoteStreamTrack reads its frames from `_queue`). Whatever it cannot place
    (no track yet, an unknown payload) it hands to aiortc's decoder thread as before."""

    def __init__(self, receiver: Any):
        super().__init__()
        self._receiver = receiver
        self._decoders: dict[str, Any] = {}
        self.decoded = 0
        self.decode_errors = 0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        _, encoded = super().add(packet)
        if encoded is None:
            return False, None
        codec = getattr(self._receiver, _CODECS_ATTRIBUTE, {}).get(packet.payload_type)
        mapper = getattr(self._receiver, _MAPPER_ATTRIBUTE, None)
        queue = getattr(self._receiver.track, "_queue", None)
        if codec is None or mapper is None or queue is None:
            return False, encoded
        encoded.timestamp = mapper.map(encoded.timestamp)
        decoder = self._decoders.get(codec.name)
        if decoder is None:
            decoder = self._decoders[codec.name] = get_decoder(codec)
        try:
            frames = decoder.decode(encoded)
        except av.FFmpegError:  # as aiortc's thread: skip it, keep the decoder's state
            self.decode_errors += 1
            return False, None
        for frame in frames:
            queue.put_nowait(frame)
            self.decoded += 1
        return False, None


def inline_decode() -> bool:
    return os.environ.get("VOXLIVE_INLINE_DECODE", "") == "1" and not legacy_audio()


def pass_through_audio(pc: RTCPeerConnection) -> int:
    """Give every audio receiver of `pc` the pass-through buffer; call it after
    setRemoteDescription (the receivers exist) and before media flows. Returns how many
    receivers it changed; 0 (and a warning) when this aiortc keeps the buffer elsewhere."""
    changed = 0
    for receiver in pc.getReceivers():
        if receiver.track is None or receiver.track.kind != "audio":
            continue
        if not hasattr(receiver, _JITTER_ATTRIBUTE):
            log.warning("this aiortc has no audio jitter buffer where voxlive expects it; "
                        "the input keeps aiortc's (80 ms more barge-in latency)")
            continue
        setattr(receiver, _JITTER_ATTRIBUTE, DecodingAudioBuffer(receiver)
                if inline_decode() else PassThroughAudioBuffer())
        changed += 1
    return changed


class FrameInbox:
    """Decoded frames, stamped on arrival, waiting for the VAD; `take()` takes them all."""

    def __init__(self) -> None:
        self._frames: list[tuple[av.AudioFrame, float]] = []
        self._ready = asyncio.Event()
        self.ended = False

    def put(self, frame: av.AudioFrame) -> None:
        self._frames.append((frame, now()))
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    async def take(self) -> list[tuple[av.AudioFrame, float]]:
        """Every frame waiting (at least one), oldest first; [] once the track ended."""
        while not self._frames and not self.ended:
            self._ready.clear()
            await self._ready.wait()
        frames, self._frames = self._frames, []
        return frames


async def read_into(track: MediaStreamTrack, inbox: FrameInbox) -> None:
    """Move the track's frames into `inbox` as aiortc hands them over, until it ends."""
    try:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            inbox.put(frame)
    finally:
        inbox.end()


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
