"""The reply audio encoded by the track itself: mono Opus, and silence that costs nothing.

aiortc encodes a track's frames for it, at a price per 20 ms frame and per call: a hop
to the loop's default thread pool (shared with the VAD and the models, so a busy pool
delays the outgoing audio: gaps), an upmix to stereo and a 96 kbit/s stereo encode, and
a pure-Python loop over the 960 samples for the RTP audio-level header. A track may hand
aiortc ready-made packets instead (it then only packs them), so the reply track encodes
here, on the loop, in mono at a voice bitrate (0.2-0.6 ms a frame on this CPU).

Most of a call's outgoing audio is silence: the assistant listens. After a few frames
of digital silence (the encoder's tail has gone out) each frame is sent as a one-byte
Opus packet, the TOC alone: a zero-length frame, which decoders play as silence
(RFC 6716 3.2.1; what libopus's own DTX sends). Encoding resumes with the next sound.
"""

from __future__ import annotations

import fractions

import av
import numpy as np

from voxlive.audio.resample import CALL_RATE

TIME_BASE = fractions.Fraction(1, CALL_RATE)
BIT_RATE = 32_000
SETTLE_FRAMES = 5
"""Silent frames still encoded after sound, so the decoder hears the encoder fade out."""


class OpusOut:
    """20 ms int16 mono frames in, Opus packets out (stamped with the frame's pts)."""

    def __init__(self, bit_rate: int = BIT_RATE):
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.bit_rate = bit_rate
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = CALL_RATE
        self.codec.time_base = TIME_BASE
        self.codec.options = {"application": "voip"}
        self._silent_run = 0
        self._toc: int | None = None
        self.encoded = 0
        self.skipped = 0

    def packet(self, samples: np.ndarray, pts: int) -> av.Packet:
        silent = not samples.any()
        self._silent_run = self._silent_run + 1 if silent else 0
        data = b""
        if not (silent and self._silent_run > SETTLE_FRAMES and self._toc is not None):
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16",
                                               layout="mono")
            frame.sample_rate = CALL_RATE
            frame.pts = pts
            frame.time_base = TIME_BASE
            data = b"".join(bytes(p) for p in self.codec.encode(frame))
            self.encoded += 1
        if data:
            self._toc = data[0]
        elif self._toc is not None:
            data = bytes([self._toc & 0xFC])  # code 0, one zero-length frame: silence
            self.skipped += 1
        else:  # the encoder's very first call gave nothing yet: a silent SILK frame
            data = b"\x08"
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = TIME_BASE
        return packet
