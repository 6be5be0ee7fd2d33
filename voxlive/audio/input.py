"""The caller's incoming audio: kept, and cut into VAD windows with their arrival.

The counterpart of AudioOutput, kept out of CallSession so that the session stays about
turns. The transport hands it 16 kHz mono float32 (each transport resamples its own
audio: transports/contract.py). Every block is kept (RecentAudio: what STT transcribes),
timed by the stream's own clock (ArrivalClock: when it really arrived), and analysed in
a worker thread: the VAD, and the echo check where the VAD hears a voice. Each window
then goes to `on_window`, in stream order; `arrival(t)` later maps a window's stream
time back to the wall clock, which is where the latency measurements start.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from voxlive.audio.analysis_worker import ANALYSIS
from voxlive.audio.clock import ArrivalClock
from voxlive.audio.echo import EchoGuard
from voxlive.audio.recent import RecentAudio
from voxlive.audio.resample import MODEL_RATE
from voxlive.audio.vad import WINDOW_S
from voxlive.latency import now

LEGACY_AUDIO_ENV = "VOXLIVE_LEGACY_AUDIO"
"""Set to 1: the audio path as it was before issue 18 (float ring, aiortc encoding the
reply, a thread-pool hop per VAD run), for `voxlive bench capacity --compare`."""
REACHED_KEPT = 100
"""Input frames whose VAD stamps are kept: 2 s of 20 ms frames."""
OnWindow = Callable[[float, float, bool], None]
"""(t, speech probability, echo) of one VAD window; t is the window's end in stream time."""


def legacy_audio() -> bool:
    return os.environ.get(LEGACY_AUDIO_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class AudioInput:
    def __init__(self, vad: Any, vad_threshold: float, echo: EchoGuard | None,
                 keep_seconds: float, on_window: OnWindow):
        self.echo = echo
        self._legacy = legacy_audio()
        self.audio = RecentAudio(MODEL_RATE, keep_seconds,
                                 np.float32 if self._legacy else np.int16)
        self._vad = vad  # a streaming VAD: process(samples) -> one probability a window
        self._vad_threshold = vad_threshold
        self._on_window = on_window
        self._windows = 0
        self._window_wall: deque[tuple[float, float]] = deque(maxlen=256)  # (t, arrival)
        self._clock = ArrivalClock(MODEL_RATE)
        # (RTP time of an input frame, when the VAD got it): the barge-in breakdown's stamps
        self.reached_vad: deque[tuple[int, float, float]] = deque(maxlen=REACHED_KEPT)

    async def feed(self, samples: np.ndarray, frames: Sequence[tuple[int | None, int]] = ()
                   ) -> None:
        """16 kHz mono float32 input audio, in stream order; `frames`: the (RTP time, sample
        count) of the transport frames it holds, stamped when the VAD gets them."""
        arrived = self._clock.arrival(self.audio.total, len(samples))
        self.audio.append(samples)
        if self._legacy:
            loop = asyncio.get_running_loop()
            decisions = await loop.run_in_executor(None, self._analyse, samples, arrived,
                                                   frames)
        else:  # every call's analysis on one thread (audio/analysis_worker.py)
            decisions = await ANALYSIS.run(lambda: self._analyse(samples, arrived, frames))
        for probability, echo in decisions:
            self._windows += 1
            t = self._windows * WINDOW_S
            self._window_wall.append((t, arrived))
            self._on_window(t, probability, echo)

    def _analyse(self, samples: np.ndarray, arrived: float,
                 frames: Sequence[tuple[int | None, int]] = ()) -> list[tuple[float, bool]]:
        """VAD, and the echo check where the VAD hears a voice. Runs in a worker thread."""
        self._stamp(samples, frames)
        probabilities = self._vad.process(samples)
        if self.echo is None:
            return [(p, False) for p in probabilities]
        self.echo.heard(samples)
        voiced = any(p >= self._vad_threshold for p in probabilities)
        echo = voiced and self.echo.is_echo(arrived)
        return [(p, echo) for p in probabilities]

    def _stamp(self, samples: np.ndarray, frames: Sequence[tuple[int | None, int]]) -> None:
        """Note when the VAD got each frame, with its RTP time and loudness."""
        reached, start = now(), 0
        for pts, count in frames:
            piece = samples[start : start + count]
            start += count
            rms = float(np.sqrt(np.mean(piece * piece))) if count else 0.0
            self.reached_vad.append((pts if pts is not None else -1, reached, rms))

    def reached_vad_since(self, since: float) -> list[list[float]]:
        """[RTP time, when the VAD got it (monotonic s), RMS] of the input frames since
        `since`: a caller finds its interruption's first frame among them."""
        return [[pts, round(at, 4), round(rms, 4)] for pts, at, rms in list(self.reached_vad)
                if at >= since]

    def arrival(self, t: float) -> float:
        """When the VAD window ending at stream time `t` arrived."""
        for window_t, arrived in reversed(self._window_wall):
            if window_t <= t + 1e-6:
                return arrived
        return now()
