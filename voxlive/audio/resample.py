"""Sample-rate conversion with libswresample (through PyAV, which aiortc already needs).

The resampler is stateful: a long stream cut into 20 ms pieces comes out with the
same number of samples as the whole stream would, so calls never drift.
"""

from __future__ import annotations

import av
import numpy as np

CALL_RATE = 48_000
"""WebRTC audio (Opus) runs at 48 kHz."""
MODEL_RATE = 16_000
"""VAD and speech recognition run at 16 kHz mono."""


class Resampler:
    """Any rate and layout in, float32 mono at `out_rate` out."""

    def __init__(self, out_rate: int):
        self.out_rate = out_rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=out_rate)
        self._input: tuple[str, str, int] | None = None  # format, layout, rate

    def process_frame(self, frame: av.AudioFrame) -> np.ndarray:
        # PyAV's resampler is set up by its first frame and refuses any other shape
        # ("Frame does not match AudioResampler setup"): a codec or format change in
        # the middle of a call (renegotiation, a new device) needs a new one. What the
        # old one still held is flushed first, so the stream keeps its length.
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        held = np.zeros(0, dtype=np.float32)
        if self._input is not None and shape != self._input:
            held = self.flush()
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.out_rate)
        self._input = shape
        out = self._collect(self._resampler.resample(frame))
        return np.concatenate([held, out]) if len(held) else out

    def process(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Resample mono float32 (or int16) samples given at `rate`."""
        samples = np.ascontiguousarray(samples)
        fmt = "s16" if samples.dtype == np.int16 else "flt"
        if fmt == "flt":
            samples = samples.astype(np.float32, copy=False)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format=fmt, layout="mono")
        frame.sample_rate = rate
        return self.process_frame(frame)

    def flush(self) -> np.ndarray:
        """The samples still held in the filter, at the end of a stream."""
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def resample_once(samples: np.ndarray, rate: int, out_rate: int) -> np.ndarray:
    """A whole clip at once (a TTS sentence, a test file)."""
    if rate == out_rate:
        return samples.astype(np.float32, copy=False)
    resampler = Resampler(out_rate)
    out: np.ndarray = np.concatenate([resampler.process(samples, rate), resampler.flush()])
    return out


def to_int16(samples: np.ndarray) -> np.ndarray:
    scaled: np.ndarray = np.clip(samples, -1.0, 1.0) * 32767.0
    return scaled.astype(np.int16)


class FrameSplitter:
    """Cuts a stream of arbitrary-length chunks into frames of exactly `frame_size` samples."""

    def __init__(self, frame_size: int):
        self.frame_size = frame_size
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = len(data) // self.frame_size * self.frame_size
        self._pending = data[whole:]
        return [data[i : i + self.frame_size] for i in range(0, whole, self.frame_size)]

    @property
    def pending(self) -> int:
        return len(self._pending)
