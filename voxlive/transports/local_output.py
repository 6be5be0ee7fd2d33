"""The speaker's jitter queue: the session's reply, a few 20 ms frames ahead of the sound card.

LocalAudio's output callback takes 20 ms from a FIFO and wakes the event loop; there
this queue tops the FIFO back up to its target by calling `session.output.next_frame()`
and resampling to the device rate. So `next_frame()` runs on the loop, once per 20 ms on
average, paced by the device's clock (as OutputAudioTrack paces it by the wall clock for
WebRTC). Kept apart from LocalAudio, which owns the streams and their threads, because
how much to keep queued is a policy of its own:

The target starts at `jitter_frames` (3 = 60 ms) and grows by a frame after each underrun
(the callback found the FIFO short and played silence), up to `max_jitter_frames` (6 =
120 ms), and shrinks back a frame per 20 s without one. Why: the loop shares a few CPUs
with whisper, llama.cpp and piper, and answers the callback's wake-up late while they
run (tens of ms on 2 cores; `stats` keeps the worst lag). 60 ms covers that on most
machines; a busy one pays a little more delay rather than crackling. Every frame here
delays the reply and the moment a barge-in silences it, so the target stays as small as
the machine allows; and when the session pauses the reply for a barge-in the FIFO is
emptied at once, leaving only PortAudio's own buffer to play out.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from voxlive.audio.output import AudioOutput
from voxlive.audio.resample import CALL_RATE, Resampler
from voxlive.transports.local_buffers import BLOCK_S, LocalAudioStats, SampleFifo

JITTER_FRAMES = 3
MAX_JITTER_FRAMES = 6
JITTER_RELAX_S = 20.0
"""The jitter queue shrinks by a frame after this long without an underrun."""


class JitterQueue:
    def __init__(self, stats: LocalAudioStats, jitter_frames: int = JITTER_FRAMES,
                 max_jitter_frames: int = MAX_JITTER_FRAMES):
        self.stats = stats  # LocalAudio's: the callback counts the underruns there
        self.jitter_frames = max(1, jitter_frames)
        self.max_jitter_frames = max(self.jitter_frames, max_jitter_frames)
        self.target = self.jitter_frames  # frames to keep queued now
        self._underruns_seen = 0
        self._calm_since = time.monotonic()
        self.stats.jitter_frames = self.stats.most_jitter_frames = self.target
        self._fifo = SampleFifo()
        self._wake = asyncio.Event()
        self.rate = 0
        self._resampler: Resampler | None = None

    def start(self, rate: int) -> None:
        """The output stream's rate, once it is known (before the first `fill`)."""
        self.rate = rate
        self._resampler = None if rate == CALL_RATE else Resampler(rate)

    @property
    def latency_s(self) -> float:
        return self.target * BLOCK_S

    # --- PortAudio's thread ---------------------------------------------------------------

    def read_into(self, mono: np.ndarray) -> int:
        """Fill the output block from the front; returns how many samples there were."""
        return self._fifo.read_into(mono)

    # --- the event loop -------------------------------------------------------------------

    def woken(self, at: float) -> None:
        """The output callback ran at `at` and took a block: top the queue up."""
        if self.stats.output_blocks > 10:
            lag = (time.monotonic() - at) * 1000
            self.stats.max_loop_lag_ms = max(self.stats.max_loop_lag_ms, lag)
        self._wake.set()

    async def keep_filled(self, output: AudioOutput) -> None:
        while True:
            self.fill(output)
            self._wake.clear()
            await self._wake.wait()

    def paused(self) -> None:
        """A barge-in paused the reply (a PlayoutBuffer of the output): what is queued here
        would still play."""
        self._fifo.clear()
        self.stats.flushed_on_pause += 1

    def resumed(self) -> None:
        return None  # the output plays on from where it paused: the next fill takes it

    def fill(self, output: AudioOutput) -> None:
        self._adapt()
        block = round(self.rate * BLOCK_S)
        target = self.target * block
        while self._fifo.available < target:
            frame = output.next_frame()
            self.stats.frames_pulled += 1
            if self._resampler is None:
                samples = frame.astype(np.float32) / 32768.0
            else:
                samples = self._resampler.process(frame, CALL_RATE)
            self._fifo.write(samples)

    def _adapt(self) -> None:
        now = time.monotonic()
        if self.stats.underruns != self._underruns_seen:
            self._underruns_seen = self.stats.underruns
            self.target = min(self.max_jitter_frames, self.target + 1)
            self._calm_since = now
        elif self.target > self.jitter_frames and now - self._calm_since >= JITTER_RELAX_S:
            self.target -= 1  # the FIFO drains by one frame: nothing is skipped
            self._calm_since = now
        self.stats.jitter_frames = self.target
        self.stats.most_jitter_frames = max(self.stats.most_jitter_frames, self.target)

    def clear(self) -> None:
        self._fifo.clear()
