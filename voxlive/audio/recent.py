"""The last few seconds of the caller's 16 kHz audio, addressable by stream time."""

from __future__ import annotations

import numpy as np


class RecentAudio:
    """A ring of input audio; `slice(start_s, end_s)` returns what was heard then."""

    def __init__(self, rate: int, keep_seconds: float):
        self.rate = rate
        self._capacity = int(rate * keep_seconds)
        self._buffer = np.zeros(self._capacity, dtype=np.float32)
        self.total = 0  # samples received since the call started

    def append(self, samples: np.ndarray) -> None:
        samples = samples[-self._capacity :]
        n = len(samples)
        start = self.total % self._capacity
        first = min(n, self._capacity - start)
        self._buffer[start : start + first] = samples[:first]
        self._buffer[: n - first] = samples[first:]
        self.total += n

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        oldest = max(0, self.total - self._capacity)
        start = max(oldest, int(start_s * self.rate))
        end = min(self.total, int(end_s * self.rate))
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        index = np.arange(start, end) % self._capacity
        return self._buffer[index]
