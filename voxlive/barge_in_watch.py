"""The call's output frame clock, as the barge-in figure sees it.

Every reply frame the transport sends passes here: the echo guard gets its reference,
the last loud and audible frames are stamped, and once the reply has gone silent under
the user's speech the `barge_in` event reports how long that took (DESIGN.md: from the
arrival of the user's first voiced audio to the end of the last reply frame sent). Kept
apart from the session so that the figure's bookkeeping reads in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from voxlive.audio.echo import EchoGuard
from voxlive.audio.input import AudioInput
from voxlive.audio.vad import WINDOW_S
from voxlive.latency import FRAME_S, BargeInTiming, audible, now

BARGE_IN_STAMPS_S = 1.0
"""The `barge_in` event carries the VAD stamps of the input frames this long before the
decision: enough to find the interruption's first frame."""

Emit = Callable[..., None]
"""The session's `_emit(kind, **fields)`: one event to the page."""


class BargeInWatch:
    def __init__(self, audio_input: AudioInput, echo: EchoGuard | None, emit: Emit):
        self.input = audio_input
        self.echo = echo
        self._emit = emit
        self.timing: BargeInTiming | None = None  # a barge-in whose silence is awaited
        self.last_loud_frame = 0.0
        self.last_audible_frame = 0.0

    def decided(self, turn: int) -> None:
        """The reply of `turn` was paused or cut under the user's speech: time it."""
        self.timing = BargeInTiming(onset=now(), decided=now(), turn=turn)

    def speech_started(self, t: float) -> None:
        """The speech that paused or cut the reply began at `t` (seconds of call audio)."""
        if self.timing is not None:
            # arrival of the first voiced window's end, less that window's length
            self.timing.onset = self.input.arrival(t + WINDOW_S) - WINDOW_S

    def frame_sent(self, frame: np.ndarray) -> None:
        """Called by the output for every frame the transport takes."""
        sent = now()
        if self.echo is not None:
            self.echo.played(sent, frame)
        if frame.any():
            self.last_loud_frame = sent
            if audible(frame):
                self.last_audible_frame = sent
            if self.timing is not None:
                self.timing.frames_after_decision += 1
        elif self.timing is not None:
            self._report(self.timing)
            self.timing = None

    def _report(self, timing: BargeInTiming) -> None:
        # The input frames' VAD stamps let a caller split its own figure (bench/bargein.py).
        received: list[Any] = self.input.reached_vad_since(timing.decided - BARGE_IN_STAMPS_S)
        self._emit("barge_in", **timing.report(self.last_loud_frame),
                   audible_until_at=round(self.last_audible_frame + FRAME_S, 4),
                   received=received)
