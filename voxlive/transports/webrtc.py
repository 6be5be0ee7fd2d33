"""WebRTC media for a call (aiortc): the caller's audio in, the paced reply audio out."""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from voxlive.audio.input import legacy_audio
from voxlive.audio.output import FRAME_SAMPLES, AudioOutput
from voxlive.audio.resample import CALL_RATE, MODEL_RATE, Resampler
from voxlive.session import CallSession
from voxlive.transports.opus_out import OpusOut
from voxlive.transports.rtp_receive import FrameInbox, read_into, stop

log = logging.getLogger(__name__)

TIME_BASE = fractions.Fraction(1, CALL_RATE)


GAP_S = 0.06
"""A frame handed out this long after the one before is a gap a caller may hear."""
GAP_WINDOW_S = 15.0


class OutputGaps:
    """The outgoing audio's gaps, over every call of the process (/metrics): how often a
    frame left more than GAP_S after the one before it (the loop was busy elsewhere)."""

    def __init__(self) -> None:
        self.frames = 0
        self.gaps = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=1000)  # (when, interval)

    def frame(self, interval: float, at: float) -> None:
        self.frames += 1
        if interval > GAP_S:
            self.gaps += 1
            self._recent.append((at, interval))

    def max_gap_s(self, at: float) -> float:
        return max((i for t, i in self._recent if t >= at - GAP_WINDOW_S), default=0.0)


OUTPUT_GAPS = OutputGaps()


def output_gauges() -> dict[str, float]:
    return {"output_frames_total": OUTPUT_GAPS.frames,
            "output_gaps_over_60ms_total": OUTPUT_GAPS.gaps,
            "output_max_gap_seconds": round(OUTPUT_GAPS.max_gap_s(time.monotonic()), 4)}


class FramePacer:
    """Hands out 20 ms frame timestamps in real time, sleeping until each is due."""

    def __init__(self, gaps: OutputGaps | None = None) -> None:
        self._start: float | None = None
        self._last = 0.0
        self._gaps = gaps
        self.pts = 0

    async def next_pts(self) -> int:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self.pts += FRAME_SAMPLES
            delay = self._start + self.pts / CALL_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if self._gaps is not None:
            t = time.monotonic()
            if self._last:
                self._gaps.frame(t - self._last, t)
            self._last = t
        return self.pts


def audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    """A 48 kHz mono s16 frame for aiortc's encoder."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = CALL_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


class OutputAudioTrack(MediaStreamTrack):
    """Sends the session's output: one 20 ms frame per tick, silence when idle.

    The frame is taken from the buffer only when its tick comes, so a barge-in
    that clears the buffer is silent from the very next frame. It goes out as an Opus
    packet made here (transports/opus_out.py); VOXLIVE_LEGACY_AUDIO=1 hands aiortc the
    frame to encode instead (the benchmarks compare both).
    """

    kind = "audio"

    def __init__(self, output: AudioOutput):
        super().__init__()
        self.output = output
        self._pacer = FramePacer(OUTPUT_GAPS)
        self._opus = None if legacy_audio() else OpusOut()

    async def recv(self) -> av.AudioFrame | av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next_pts()
        if self._opus is not None:
            return self._opus.packet(self.output.next_frame(), pts)
        return audio_frame(self.output.next_frame(), pts)


async def pump_video(track: MediaStreamTrack, session: CallSession) -> None:
    """Keep the caller's latest camera frame (by reference) until the track ends."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        session.on_camera_frame(frame)


class FrameFeed:
    """The WebRTC input's side of the transport contract (transports/contract.py): aiortc's
    frames (48 kHz from Opus, any layout) resampled to 16 kHz mono float32 and fed to the
    session with their RTP times, all the frames that arrived together in one VAD run."""

    def __init__(self, session: CallSession):
        self.session = session
        self._resampler = Resampler(MODEL_RATE)

    async def frames(self, frames: list[av.AudioFrame]) -> None:
        samples = [self._resampler.process_frame(frame) for frame in frames]
        stamps = [(frame.pts, len(piece)) for frame, piece in zip(frames, samples, strict=True)]
        await self.session.feed(np.concatenate(samples), stamps)


async def pump_input(track: MediaStreamTrack, session: CallSession) -> None:
    """Feed the caller's audio track into the session until the track ends.

    Frames are taken as they come (rtp_receive.FrameInbox): while the VAD analyses one
    batch, the next frames wait in the inbox, and all of them go to the VAD in the next
    run, so a burst never queues one VAD run per frame behind it."""
    inbox, feed = FrameInbox(), FrameFeed(session)
    reader = asyncio.ensure_future(read_into(track, inbox))
    try:
        while frames := await inbox.take():
            await feed.frames([frame for frame, _arrived in frames])
    finally:
        await stop(reader)
