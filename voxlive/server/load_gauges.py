"""What /metrics shows about the daemon under load (issue 18): the shared models'
batches and queueing (voxlive/sched), the outgoing audio's gaps (transports/webrtc.py)
and the garbage collector's pauses (server/gc_watch.py)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from voxlive.audio.input import legacy_audio
from voxlive.sched import gauges as sched_gauges
from voxlive.server.gc_watch import GC_WATCH, settle

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def daemon_started() -> None:
    if not legacy_audio():
        settle()  # the loaded models out of the collector's way
        few_malloc_arenas()
    GC_WATCH.install()  # from here on: the pauses a call may hear


def few_malloc_arenas() -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core),
    and aiortc runs a decoder thread per call: each call then holds a partly used arena
    of its own (see README, Capacity). Two arenas serve every thread; what
    contention they add is small next to a 20 ms frame. MALLOC_ARENA_MAX in the
    environment wins (glibc reads it at start)."""
    import ctypes
    import ctypes.util

    if "MALLOC_ARENA_MAX" in os.environ:
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(M_ARENA_MAX, ARENAS)


def load_gauges(models: Any) -> dict[str, float]:
    from voxlive.transports.webrtc import output_gauges

    return {**sched_gauges(models), **output_gauges(), **GC_WATCH.gauges()}
