"""Echo guard: is the sound at the microphone the assistant's own voice coming back?

Without relying on the browser's echo canceller: the guard keeps the last second of
audio sent to the caller and measures the normalised cross-correlation between the
latest input and that audio, over every delay up to `max_delay_s`. The user's own
voice does not correlate with the reply; an echo does, whatever its level. When the
user talks over the echo, their voice dominates and the correlation drops, so real
speech still interrupts. The squared correlation is the share of the input's energy
that the echo explains: at the default threshold of 0.6, input counts as echo while the
echo explains more than about a third of it, and as the user's speech once the user is
about as loud as the echo.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from voxlive.audio.resample import MODEL_RATE


class EchoGuard:
    def __init__(self, threshold: float = 0.6, max_delay_s: float = 0.6,
                 analysis_s: float = 0.2, rate: int = MODEL_RATE):
        self.threshold = threshold
        self.rate = rate
        self.max_delay_s = max_delay_s
        self.analysis = int(analysis_s * rate)
        keep_frames = int((max_delay_s + analysis_s) * 50) + 10
        self._played: deque[tuple[float, np.ndarray]] = deque(maxlen=keep_frames)
        self._heard: deque[np.ndarray] = deque(maxlen=64)
        self._heard_len = 0
        self._lock = threading.Lock()
        self.last_correlation = 0.0
        self.last_delay_s = 0.0

    def played(self, at: float, frame_48k: np.ndarray) -> None:
        """A 20 ms output frame (int16, 48 kHz) handed to the transport at time `at`."""
        decimated = frame_48k.astype(np.float32).reshape(-1, 3).mean(axis=1) / 32768.0
        with self._lock:
            self._played.append((at, decimated))

    def heard(self, samples: np.ndarray) -> None:
        """Input audio (16 kHz float32), in stream order."""
        with self._lock:
            self._heard.append(samples)
            self._heard_len += len(samples)
            while self._heard_len - len(self._heard[0]) >= self.analysis:
                self._heard_len -= len(self._heard.popleft())

    def is_echo(self, now: float) -> bool:
        """Does the latest input correlate with what was played up to `max_delay_s` ago?"""
        with self._lock:
            reference = [f for t, f in self._played if t >= now - self.max_delay_s - 0.3]
            if not reference or self._heard_len < self.analysis:
                return False
            heard = np.concatenate(list(self._heard))[-self.analysis :]
        played = np.concatenate(reference)
        self.last_correlation, offset = best_match(heard, played)
        # How long ago the matching audio was played: the echo path's delay.
        self.last_delay_s = (len(played) - offset - len(heard)) / self.rate
        return self.last_correlation >= self.threshold


def correlation(x: np.ndarray, reference: np.ndarray) -> float:
    """Max normalised cross-correlation of `x` against every position in `reference`."""
    return best_match(x, reference)[0]


def best_match(x: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """The best normalised cross-correlation of `x` in `reference`, and where it is."""
    n = len(x)
    if len(reference) < n:
        return 0.0, 0
    x = x - x.mean()
    x_energy = float(np.dot(x, x))
    if x_energy < 1e-8:
        return 0.0, 0
    size = 1 << int(np.ceil(np.log2(len(reference) + n)))
    spectrum = np.fft.rfft(reference, size) * np.conj(np.fft.rfft(x, size))
    dots = np.fft.irfft(spectrum, size)[: len(reference) - n + 1]
    # Energy of every n-long window of the reference, by running sums (a convolution
    # here would cost n operations per position: tens of ms per check).
    running = np.concatenate([[0.0], np.cumsum(reference.astype(np.float64) ** 2)])
    window_energy = running[n:] - running[:-n]
    scores = np.abs(dots) / np.sqrt(x_energy * np.maximum(window_energy, 1e-8))
    scores[window_energy < 1e-6 * n] = 0.0  # silence played: nothing to echo
    if scores.size == 0:
        return 0.0, 0
    best = int(np.argmax(scores))
    return float(scores[best]), best
