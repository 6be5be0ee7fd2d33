"""What /metrics shows about the daemon under load (issue 18): the shared models'
batches and queueing (voxlive/sched), the outgoing audio's gaps (transports/webrtc.py)
and the garbage collector's pauses (server/gc_watch.py)."""

from __future__ import annotations

from typing import Any

from voxlive.audio.input import legacy_audio
from voxlive.sched import gauges as sched_gauges
from voxlive.server.gc_watch import GC_WATCH, settle


def daemon_started() -> None:
    if not legacy_audio():
        settle()  # the loaded models out of the collector's way
    GC_WATCH.install()  # from here on: the pauses a call may hear


def load_gauges(models: Any) -> dict[str, float]:
    from voxlive.transports.webrtc import output_gauges

    return {**sched_gauges(models), **output_gauges(), **GC_WATCH.gauges()}
