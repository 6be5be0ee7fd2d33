"""A blocking iterator, consumed from asyncio: the bridge every in-process backend needs.

llama.cpp's token stream and every TTS's chunks are plain blocking iterators; the event
loop must never run them. A generator can only be closed from the thread that runs it,
so the whole iteration lives on one worker thread, which hands each item to the loop.
Leaving the `async for` (or cancelling its task) sets a stop flag that the source may read
itself (Parler does, at each decoding step, even while the consumer waits) and that the
worker checks between items: the work stops within an item, not at its end. The worker
runs in the consumer's context (contextvars): a backend shared by many calls can tell
whose work it does (voxlive/sched orders the shared TTS's sentences by their reply).

Workers are daemon threads, so a hung-up call never keeps the process alive, but one left
inside a model when the interpreter tears down crashes the process (piper's ONNX run
aborts: `voxlive bench quality` ended with a segfault once its last call hung up while
its reply was being synthesised). At exit every worker still running is told to stop and
waited for, up to EXIT_WAIT_S.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from voxlive.backends.base import BackendError

T = TypeVar("T")

_END = object()
EXIT_WAIT_S = 5.0
"""At exit, how long to wait for workers still inside a model (a piper sentence takes
well under a second here; llama.cpp stops at its next token)."""

_running: dict[threading.Thread, threading.Event] = {}  # worker -> its stop flag
_running_lock = threading.Lock()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


async def iterate_in_thread(source: Callable[[threading.Event], Iterator[T]], *, stage: str,
                            failure: str, name: str = "backend",
                            wait_on_close: bool = False) -> AsyncIterator[T]:
    """Yield what `source(stop)` yields, run on a thread of its own.

    An exception in the source is raised here: a BackendError as it is, anything else as
    BackendError(stage, f"{failure}: {exc}"). `wait_on_close`: leaving the loop waits
    until the worker has stopped (llama.cpp: the next reply must not queue behind a
    generation nobody reads); otherwise the worker finishes on its own.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()
    done = loop.create_future()

    def hand_over(item: object) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    def produce() -> None:
        with _running_lock:
            _running[threading.current_thread()] = stop
        try:
            for item in source(stop):  # leaving the loop closes the generator, here
                if stop.is_set():
                    break
                hand_over(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: B036 - handed to the consumer, not swallowed
            hand_over(_Failed(exc))
        finally:
            hand_over(_END)
            if not loop.is_closed():
                loop.call_soon_threadsafe(finished)
            with _running_lock:
                _running.pop(threading.current_thread(), None)

    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                              name=name, daemon=True)
    worker.start()
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, _Failed):
                if isinstance(item.error, BackendError):
                    raise item.error
                raise BackendError(stage, f"{failure}: {item.error}") from item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        if wait_on_close:
            await asyncio.shield(done)


@atexit.register
def _stop_running_workers() -> None:
    """Stop and wait for the workers still running when the process exits."""
    with _running_lock:
        running = dict(_running)
    for stop in running.values():
        stop.set()
    deadline = time.monotonic() + EXIT_WAIT_S
    for worker in running:
        worker.join(max(0.0, deadline - time.monotonic()))
