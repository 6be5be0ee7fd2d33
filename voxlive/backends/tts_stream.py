"""A blocking TTS generator, consumed chunk by chunk from asyncio.

TTS backends are plain generators (voxlive/backends/base.py) and cancel when the
consumer stops iterating. A generator can only be closed from the thread that runs
it, so the whole iteration lives in one worker thread, which hands each chunk to the
event loop and checks a stop flag between chunks: a cancelled reply stops the
synthesis at its next chunk (Parler: the next fraction of a second), not at the end
of the sentence.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from voxlive.backends.base import BackendError, TextToSpeech

_END = object()


async def speech_chunks(tts: TextToSpeech, text: str,
                        style: str = "default") -> AsyncIterator[np.ndarray]:
    """Yield the TTS's float32 chunks as they are made; leaving the loop (or being
    cancelled) stops the synthesis."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def hand_over(item: Any) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        try:
            for chunk in tts.synthesize(text, style):  # leaving the loop closes it
                if stop.is_set():
                    break
                hand_over(chunk)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: B036 - handed to the consumer, not swallowed
            hand_over(exc)
        finally:
            hand_over(_END)

    worker = threading.Thread(target=produce, name="tts", daemon=True)
    worker.start()
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, BackendError):
                raise item
            if isinstance(item, BaseException):
                raise BackendError("tts", f"speech synthesis failed: {item}") from item
            yield item
    finally:
        stop.set()
