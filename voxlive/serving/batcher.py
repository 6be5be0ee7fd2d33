"""Dynamic batching for the local runtime: what Ray Serve's @serve.batch does, in asyncio.

Requests that arrive within `wait_s` of the first one (or while the previous batch is
still running) go into one call of the engine, at most `max_size` at a time, run in a
worker thread. Each caller gets its own result, and the size of the batch it rode in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any


class MicroBatcher:
    def __init__(self, run: Callable[[list[Any]], list[Any]], max_size: int, wait_s: float):
        self.run = run
        self.max_size = max_size
        self.wait_s = wait_s
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[tuple[Any, int]]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> tuple[Any, int]:
        """The engine's result for `item`, and how many requests shared its batch."""
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._loop())
        assert self._queue is not None
        future: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.wait_s
            while len(batch) < self.max_size:
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(),
                                                        max(0.0, deadline - loop.time())))
                except TimeoutError:
                    break
            batch = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(None, self.run, [i for i, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result((result, len(batch)))
