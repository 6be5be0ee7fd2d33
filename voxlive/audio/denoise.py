"""Input noise suppression: WebRTC's noise suppressor (and optionally its gain control),
through the same livekit AudioProcessingModule that cancels the echo (aec.py).

Whether it helps is measured, not assumed: `python -m voxlive.bench.hearing` transcribes
the same speech in pink noise with and without it (README: "Hearing").
"""

from __future__ import annotations

import numpy as np

from voxlive.audio.aec import FRAME_S, _livekit_rtc, _to_int16_bytes
from voxlive.audio.resample import MODEL_RATE, FrameSplitter


class NoiseSuppressor:
    """Suppresses stationary noise in mono float32 audio, in 10 ms frames.

    One instance per audio stream (it adapts its noise estimate to that stream). `process`
    takes pieces of any length and returns whole 10 ms frames: up to 10 ms is held back
    until the next piece completes a frame; `flush` returns it (zero-padded).
    """

    def __init__(self, rate: int = MODEL_RATE, gain_control: bool = False):
        self._rtc = _livekit_rtc()
        self.rate = rate
        self.frame = round(rate * FRAME_S)
        self._apm = self._rtc.AudioProcessingModule(
            noise_suppression=True, high_pass_filter=True, auto_gain_control=gain_control)
        self._splitter = FrameSplitter(self.frame)

    def process(self, samples: np.ndarray) -> np.ndarray:
        out = []
        for frame in self._splitter.push(samples):
            audio = self._rtc.AudioFrame(_to_int16_bytes(frame), self.rate, 1, self.frame)
            self._apm.process_stream(audio)
            out.append(np.frombuffer(audio.data, np.int16))
        if not out:
            return np.zeros(0, np.float32)
        return np.concatenate(out).astype(np.float32) / 32768.0

    def flush(self) -> np.ndarray:
        pending = self._splitter.pending
        if not pending:
            return np.zeros(0, np.float32)
        return self.process(np.zeros(self.frame - pending, np.float32))


def suppressed(audio: np.ndarray, rate: int = MODEL_RATE) -> np.ndarray:
    """One utterance through a suppressor of its own (its noise estimate is the
    utterance's), as long as it came in."""
    suppressor = NoiseSuppressor(rate)
    return np.concatenate([suppressor.process(audio), suppressor.flush()])[: audio.size]
