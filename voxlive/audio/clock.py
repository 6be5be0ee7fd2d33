"""When input audio really arrived, from the stream's own clock."""

from __future__ import annotations

from collections import deque

from voxlive.latency import now


class ArrivalClock:
    """Audio arrives in real time, but the runtime may take it from the transport late
    (when the CPU is busy). The smallest lag between the stream's clock and the wall
    clock over the last seconds is the true one; timing the echo check or the latency
    from the moment the loop got round to a frame would count that backlog as a longer
    echo path or a shorter wait."""

    def __init__(self, rate: int, window_frames: int = 500):
        self.rate = rate
        self._offsets: deque[float] = deque(maxlen=window_frames)  # 10 s of 20 ms frames

    def arrival(self, samples_before: int, count: int) -> float:
        """When the end of `count` samples, after `samples_before` in the stream, arrived."""
        stream_time = samples_before / self.rate
        self._offsets.append(now() - stream_time)
        return min(self._offsets) + stream_time + count / self.rate
