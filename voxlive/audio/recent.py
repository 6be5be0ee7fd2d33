"""The last few seconds of the caller's 16 kHz audio, addressable by stream time."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SCALE = 32767.0


class RecentAudio:
    """A ring of input audio; `slice(start_s, end_s)` returns what was heard then.

    Kept as int16, which is what the transport delivered (Opus decodes to 16-bit PCM):
    half the memory of float32 for the same sound. The ring holds a whole utterance (up to
    max_utterance_s, 30 s, plus margins: 1.1 MB a call once full; the pages are touched
    as it fills). `dtype=np.float32` keeps floats (VOXLIVE_LEGACY_AUDIO, for comparison).
    """

    def __init__(self, rate: int, keep_seconds: float, dtype: npt.DTypeLike = np.int16):
        self.rate = rate
        self._capacity = int(rate * keep_seconds)
        self._buffer: np.ndarray = np.zeros(self._capacity, dtype=dtype)
        self._int = np.issubdtype(self._buffer.dtype, np.integer)
        self.total = 0  # samples received since the call started

    def append(self, samples: np.ndarray) -> None:
        samples = samples[-self._capacity :]
        if self._int:
            samples = np.clip(np.rint(samples * SCALE), -SCALE - 1, SCALE)
        n = len(samples)
        start = self.total % self._capacity
        first = min(n, self._capacity - start)
        self._buffer[start : start + first] = samples[:first]
        self._buffer[: n - first] = samples[first:]
        self.total += n

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        """16 kHz mono float32, from `start_s` to `end_s` of stream time (what is still kept)."""
        oldest = max(0, self.total - self._capacity)
        start = max(oldest, int(start_s * self.rate))
        end = min(self.total, int(end_s * self.rate))
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        index = np.arange(start, end) % self._capacity
        kept = self._buffer[index]
        if self._int:
            return (kept.astype(np.float32) / np.float32(SCALE)).astype(np.float32)
        return kept.astype(np.float32, copy=False)
