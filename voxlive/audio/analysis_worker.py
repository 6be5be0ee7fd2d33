"""One thread that runs every call's input analysis (VAD, echo check), in turn.

Each call used to hand each batch of input frames to the loop's default thread pool:
one hop there and one back per 20 ms per call, in a pool shared with the models (a
transcription or a reply holds a worker for seconds) and, before the reply track encoded
its own packets, with aiortc's encoder. Under load the hops queue behind each other and
behind the models, and the loop spends its time waking threads. Here one thread takes
every call's waiting work at once, runs it, and hands all the results back to the loop
in one wake-up: the hops per second fall as the calls grow, and a busy model cannot
delay a VAD decision. Silero runs one window in a fraction of a millisecond, so one
thread keeps up with dozens of calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]
_Done = tuple["asyncio.Future[Any]", bool, Any]


def _resolve(done: list[_Done]) -> None:
    for future, ok, value in done:
        if future.done():  # its caller was cancelled (the call hung up)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class AnalysisWorker:
    """`await worker.run(fn)`: fn() on the worker thread, its result on the loop."""

    def __init__(self, name: str = "voxlive-analysis"):
        self.name = name
        # A SimpleQueue, not a lock the loop would share with the worker: on a busy core
        # the worker can be preempted at any moment, and the loop must never wait for it.
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.jobs = 0

    def run(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((loop, future, fn))
        if self._thread is None:
            with self._starting:  # once per process
                if self._thread is None:
                    self._thread = threading.Thread(target=self._work, name=self.name,
                                                    daemon=True)
                    self._thread.start()
        return future

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    def _work(self) -> None:
        while True:
            batch = [self._jobs.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._jobs.get_nowait())
            done: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
            for loop, future, fn in batch:
                try:
                    result: _Done = (future, True, fn())
                except BaseException as exc:  # noqa: B036 - raised in the caller instead
                    result = (future, False, exc)
                done.setdefault(loop, []).append(result)
            self.rounds += 1
            self.jobs += len(batch)
            for loop, results in done.items():
                if not loop.is_closed():
                    with contextlib.suppress(RuntimeError):  # closed meanwhile
                        loop.call_soon_threadsafe(_resolve, results)


ANALYSIS = AnalysisWorker()
"""The process's one analysis thread, shared by every call."""
