"""The transport contract: what a transport gives a call and takes from it.

A transport (WebRTC: transports/webrtc.py; the local sound card: transports/local.py; the
Realtime API over a WebSocket: realtime/ws.py) moves audio between a peer and a
CallSession, and does its own resampling and framing, so that the session deals in one
format each way:
- in: 16 kHz mono float32, in stream order, through `CallAudio.feed` (WebRTC resamples
  aiortc's 48 kHz frames, FrameFeed; the sound card its own rate; the Realtime API
  decodes PCM or G.711);
- out: one 20 ms frame of 48 kHz mono int16 per tick of the transport's own clock, taken
  from `CallAudio.output.next_frame()` only when the tick comes (so a barge-in is silent
  from the next frame) and converted to the transport's format (Opus, the sound card's
  rate, base64 PCM). A transport that buffers frames beyond that one registers a
  `PlayoutBuffer` on the output, which tells it when the reply pauses and plays on
  (LiveKit Agents' voice io.AudioOutput has the same pause/resume, push-based).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from voxlive.audio.output import PlayoutBuffer

__all__ = ["CallAudio", "FrameSource", "PlayoutBuffer"]


class FrameSource(Protocol):
    """The call's reply audio, pulled one 20 ms frame at a time (voxlive.audio.output)."""

    buffers: list[PlayoutBuffer]

    def next_frame(self) -> np.ndarray:
        """The next 20 ms of 48 kHz mono int16: reply audio, or silence."""
        ...


class CallAudio(Protocol):
    """What a call (voxlive.session.CallSession) offers every transport."""

    @property
    def output(self) -> FrameSource: ...

    async def feed(self, samples: np.ndarray,
                   frames: Sequence[tuple[int | None, int]] = ()) -> None:
        """16 kHz mono float32 in stream order; `frames`: the (RTP time, sample count) of
        the transport's frames in it, where it has them."""
        ...
