"""The process's vital signs: event-loop lag, threads, file descriptors, memory, tasks.

/healthz turns not-ok (503) when the daemon cannot take a call it should: a call slot
stuck past its connect deadline, or an event loop lagging (a blocking call on the
loop); systemd's health timer then restarts it. /metrics exposes the same figures, and
`voxlive bench soak` samples them across call cycles to show that nothing grows.

A daemon holding `server.max_calls` calls is "full": /healthz answers 503 with status
"full" (and Retry-After), so a load balancer that health-checks it routes new calls to
another daemon until a call ends; its calls go on. A restarter must not take "full" for
"broken": `/healthz?live=1` is the liveness check, 503 only for real problems.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

FULL_RETRY_AFTER_S = 5
"""Retry-After on a full daemon's 503: calls last minutes, a balancer re-checks sooner."""


class LoopLag:
    """How late the event loop wakes a sleeper: a blocked loop shows as lag."""

    def __init__(self, period_s: float = 0.25, window: int = 40):
        self.period_s = period_s
        self._recent: deque[float] = deque(maxlen=window)  # the last ~10 s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.period_s)
            self._recent.append(max(0.0, time.monotonic() - t - self.period_s))

    @property
    def lag_s(self) -> float:
        """The worst lag over the last few seconds (0 before the first sample)."""
        return max(self._recent, default=0.0)


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def os_threads() -> int:
    """Every thread of the process, native ones too (FFmpeg's codec threads, onnxruntime,
    llama.cpp), which `threading` does not see; falls back to Python's count."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def executor_workers() -> int:
    """Threads of the loop's default executor (model inference): they are started on
    demand up to its max_workers and then kept, so they are a plateau, not a leak."""
    try:
        executor = asyncio.get_running_loop()._default_executor  # type: ignore[attr-defined]
    except RuntimeError:
        return 0
    return len(getattr(executor, "_threads", ())) if executor is not None else 0


@dataclass(frozen=True)
class Vitals:
    rss_mb: float
    threads: int  # the OS's count: native threads and executor workers included
    py_threads: int  # Python's (threading)
    workers: int  # the default executor's
    fds: int
    tasks: int

    @classmethod
    def now(cls) -> Vitals:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # no running loop
            tasks = 0
        return cls(round(rss_bytes() / 2**20, 1), os_threads(), threading.active_count(),
                   executor_workers(), open_fds(), tasks)


def health_report(daemon: Any, live_only: bool = False) -> tuple[dict[str, Any], int]:
    """/healthz's body and status. Readiness (the default): 503 when not ok or full, so a
    balancer sends the next offer elsewhere. Liveness (`live_only`): 503 only when not ok,
    so a restarter leaves a busy daemon alone."""
    problems = []
    if stuck := daemon.stuck_calls():
        problems.append(f"{stuck} call slot(s) stuck connecting past the deadline")
    if (lag := daemon.loop_lag.lag_s) > daemon.limits.max_loop_lag_s:
        problems.append(f"event loop lagging {lag:.1f} s")
    calls, max_calls = daemon.live_calls(), daemon.config.server.max_calls
    full = calls >= max_calls
    status = "not ok" if problems else "full" if full else "ok"
    models = daemon.models
    body = {
        "status": status,
        "problems": problems,
        "profile": daemon.profile_name,
        "calls": calls,
        "max_calls": max_calls,
        "loop_lag_s": round(lag, 3),
        "models": {stage: getattr(models, stage).description
                   for stage in ("vad", "stt", "llm", "tts", "vision", "emotion")
                   if getattr(models, stage, None) is not None},
    }
    refuse = bool(problems) or (full and not live_only)
    return body, 503 if refuse else 200
