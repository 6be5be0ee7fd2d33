"""What crosses between PortAudio's callback threads and the event loop.

The block size, a FIFO of samples for the speaker, the counters both sides keep, and the
real-time priority the callback threads ask for. No PortAudio and no asyncio in here.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

BLOCK_S = 0.02
"""PortAudio block: 20 ms, the same as a WebRTC frame and AudioOutput's frame."""


class SampleFifo:
    """Float32 samples handed from the event loop to PortAudio's thread."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._offset = 0  # samples of _chunks[0] already read
        self._count = 0
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        return self._count

    def write(self, samples: np.ndarray) -> None:
        if len(samples):
            with self._lock:
                self._chunks.append(samples)
                self._count += len(samples)

    def read_into(self, out: np.ndarray) -> int:
        """Fill `out` (1-D) from the front; returns how many samples there were."""
        wanted = len(out)
        filled = 0
        with self._lock:
            while filled < wanted and self._chunks:
                chunk = self._chunks[0]
                take = min(wanted - filled, len(chunk) - self._offset)
                out[filled : filled + take] = chunk[self._offset : self._offset + take]
                filled += take
                self._offset += take
                if self._offset >= len(chunk):
                    self._chunks.popleft()
                    self._offset = 0
            self._count -= filled
        out[filled:] = 0.0
        return filled

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._offset = 0
            self._count = 0


@dataclass
class LocalAudioStats:
    input_blocks: int = 0
    dropped_input: int = 0  # blocks dropped because the session fell 2 s behind
    input_overflows: int = 0  # PortAudio reported lost input
    output_blocks: int = 0
    underruns: int = 0  # output blocks the jitter queue could not fill (silence played)
    jitter_frames: int = 0  # the jitter queue's target now, in 20 ms frames
    most_jitter_frames: int = 0  # its largest target so far
    output_underflows: int = 0  # PortAudio reported an output gap
    frames_pulled: int = 0  # session.output.next_frame() calls
    flushed_on_pause: int = 0  # barge-in pauses that emptied the jitter queue
    max_callback_gap_ms: float = 0.0  # longest wait between two output callbacks
    max_loop_lag_ms: float = 0.0  # longest wait for the loop to refill after a callback
    realtime_input: bool = False  # PortAudio's threads got real-time scheduling
    realtime_output: bool = False


REALTIME_PRIORITY = 10


def prioritise_this_thread() -> bool:
    """Real-time (round-robin) scheduling for the calling PortAudio thread, where allowed
    (root, or an RLIMIT_RTPRIO such as the audio group's). On a small CPU busy with the
    models, a normal thread can wait longer than PortAudio's buffer lasts; a real-time
    one runs as soon as it wakes. It sleeps most of the time and does little when it
    runs (copy 20 ms), so it cannot starve the machine."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(REALTIME_PRIORITY))
    except (AttributeError, OSError):
        return False
    return True
