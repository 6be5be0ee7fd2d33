"""The garbage collector's pauses, for /metrics, and a frozen start-up heap.

Every 20 ms frame of every call allocates Python objects (packets, frames, futures), so
the collector runs often; a full (generation 2) collection walks every object the
process holds, and after the models have loaded that is hundreds of thousands: a pause
of tens of milliseconds with the loop stopped, which a caller hears as a gap. The objects
made while loading live as long as the process, so `settle()` moves them out of the
collector's reach (gc.freeze) once the daemon is up. `GcWatch` times every collection
(gc.callbacks) so that /metrics shows what the collector costs.
"""

from __future__ import annotations

import gc
import time
from typing import Any


class GcWatch:
    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.max_pause_s = 0.0
        self.total_pause_s = 0.0
        self._started = 0.0

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.collections[min(2, int(info.get("generation", 0)))] += 1
        self.total_pause_s += pause
        self.max_pause_s = max(self.max_pause_s, pause)

    def gauges(self) -> dict[str, float]:
        return {"gc_collections_gen2": self.collections[2],
                "gc_pause_seconds_total": round(self.total_pause_s, 4),
                "gc_max_pause_seconds": round(self.max_pause_s, 4)}


GC_WATCH = GcWatch()


def settle() -> None:
    """The daemon is up: what exists now lives as long as the process (models, modules),
    so later full collections need not walk it."""
    gc.collect()
    gc.freeze()
