"""A blocking TTS generator, consumed chunk by chunk from asyncio.

TTS backends are plain generators (voxlive/backends/base.py) and cancel when the
consumer stops iterating. A generator can only be closed from the thread that runs
it, so the whole iteration lives in one worker thread, which hands each chunk to the
event loop. A cancelled reply sets a stop flag that the backend itself reads (Parler:
at its next decoding step, even while this thread waits for a chunk) and that this
thread checks between chunks: the synthesis stops within a step or a chunk, not at the
end of the sentence.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from voxlive.audio.output import AudioOutput, Playback
from voxlive.audio.resample import CALL_RATE, Resampler, to_int16
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
            for chunk in tts.synthesize(text, style, stop):  # leaving the loop closes it
                if stop.is_set():
                    break
                hand_over(chunk)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: B036 - handed to the consumer, not swallowed
            hand_over(exc)
        finally:
            hand_over(_END)

    # In the reply's context: the shared TTS orders sentences by their reply (voxlive/sched).
    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,),
                              name="tts", daemon=True)
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


async def speak_into(output: AudioOutput, tts: TextToSpeech, playback: Playback, sentence: str,
                     style: str = "default",
                     on_first_audio: Callable[[], None] | None = None) -> bool:
    """Synthesise one sentence into the call's output as it is made: the first chunk
    starts the sentence, later ones extend it. Returns whether any audio came.

    Cancelled midway (a barge-in), the sentence is closed with what it has, so the
    output never waits for a chunk that will not come."""
    resampler = Resampler(CALL_RATE)
    pushed = False
    tail = np.zeros(0, np.int16)
    try:
        async for chunk in speech_chunks(tts, sentence, style):
            if not len(chunk):
                continue
            samples = to_int16(resampler.process(chunk, tts.sample_rate))
            if pushed:
                output.extend(playback, samples)
                continue
            if on_first_audio is not None:
                on_first_audio()
            output.push(playback, samples, sentence, complete=False)
            pushed = True
        tail = to_int16(resampler.flush())
    finally:
        if pushed:
            output.extend(playback, tail, complete=True)
    return pushed
