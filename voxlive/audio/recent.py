"""The last few seconds of the caller's 16 kHz audio, addressable by stream time."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SCALE = 32767.0


class RecentAudio:
    """A ring of input audio; `slice(start_s, end_s)` returns what was heard then.

    Kept as int16, which is what the transport delivered (Opus decodes to 16-bit PCM):
    half the memory of float32 for the same sound. It holds up to `keep_seconds` (a whole
    utterance: max_utterance_s, 30 s, plus margins), in half-second blocks made as the
    audio comes and freed when it falls out of the ring or before `forget_before`: the
    session forgets what no turn can ask for any more (a listening call keeps about two
    seconds, 64 KB, instead of the full ring's 1.1 MB). `dtype=np.float32` keeps floats
    (VOXLIVE_LEGACY_AUDIO, for comparison).
    """

    def __init__(self, rate: int, keep_seconds: float, dtype: npt.DTypeLike = np.int16,
                 block_seconds: float = 0.5):
        self.rate = rate
        self._capacity = int(rate * keep_seconds)
        self._block = max(1, int(rate * block_seconds))
        self._dtype = np.dtype(dtype)
        self._int = np.issubdtype(self._dtype, np.integer)
        self._blocks: dict[int, np.ndarray] = {}  # block number -> its samples
        self._floor = 0  # samples before this one are forgotten
        self.total = 0  # samples received since the call started

    @property
    def nbytes(self) -> int:
        return sum(block.nbytes for block in self._blocks.values())

    @property
    def _oldest(self) -> int:
        return max(self._floor, self.total - self._capacity)

    def append(self, samples: np.ndarray) -> None:
        if len(samples) > self._capacity:
            self.total += len(samples) - self._capacity
            samples = samples[-self._capacity :]
        if self._int:
            samples = np.clip(np.rint(samples * SCALE), -SCALE - 1, SCALE)
        done = 0
        while done < len(samples):
            number, offset = divmod(self.total, self._block)
            block = self._blocks.get(number)
            if block is None:
                block = self._blocks[number] = np.zeros(self._block, self._dtype)
            count = min(len(samples) - done, self._block - offset)
            block[offset : offset + count] = samples[done : done + count]
            done += count
            self.total += count
        self._drop_old()

    def forget_before(self, t: float) -> None:
        """Nothing before `t` (stream seconds) will be asked for: free it."""
        self._floor = max(self._floor, min(round(t * self.rate), self.total))
        self._drop_old()

    def _drop_old(self) -> None:
        first_kept = self._oldest // self._block
        for number in [n for n in self._blocks if n < first_kept]:
            del self._blocks[number]

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        """16 kHz mono float32, from `start_s` to `end_s` of stream time (what is still kept)."""
        start = max(self._oldest, round(start_s * self.rate))
        end = min(self.total, round(end_s * self.rate))
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        parts = []
        for number in range(start // self._block, (end - 1) // self._block + 1):
            first = number * self._block
            block = self._blocks[number]
            parts.append(block[max(start - first, 0) : min(end - first, self._block)])
        kept = np.concatenate(parts)
        if self._int:
            return (kept.astype(np.float32) / np.float32(SCALE)).astype(np.float32)
        return kept.astype(np.float32, copy=False)
