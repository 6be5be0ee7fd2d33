"""A blocking TTS generator, consumed chunk by chunk from asyncio, into a call's output.

TTS backends are plain generators (voxlive/backends/base.py) and cancel when the
consumer stops iterating; voxlive/backends/threaded.py runs one on a worker thread. A
cancelled reply sets a stop flag that the backend itself reads (Parler: at its next
decoding step, even while the worker waits for a chunk) and that the worker checks
between chunks: the synthesis stops within a step or a chunk, not at the end of the
sentence.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np

from voxlive.audio.output import AudioOutput, Playback
from voxlive.audio.resample import CALL_RATE, Resampler, to_int16
from voxlive.backends.base import BackendError, TextToSpeech
from voxlive.backends.threaded import iterate_in_thread


def speech_chunks(tts: TextToSpeech, text: str,
                  style: str = "default") -> AsyncIterator[np.ndarray]:
    """Yield the TTS's float32 chunks as they are made; leaving the loop (or being
    cancelled) stops the synthesis."""
    return iterate_in_thread(lambda stop: tts.synthesize(text, style, stop), stage="tts",
                             failure="speech synthesis failed", name="tts")


MAX_SENTENCE_S = 60
"""Speech for one sentence (at most 160 characters, about 12 s): a TTS, or a remote TTS
server, that goes on past this is broken, and the call's memory must not pay for it."""


def call_rate_chunks(tts: TextToSpeech, text: str,
                     style: str = "default") -> AsyncIterator[np.ndarray]:
    """`speech_chunks` as the call's output takes them, int16 at CALL_RATE, the resampler's
    tail last; resampled in the worker thread (about a millisecond a second of speech,
    which on the event loop would be every call's)."""
    def made(stop: threading.Event) -> Iterator[np.ndarray]:
        resampler = Resampler(CALL_RATE)
        made_s = 0.0
        for chunk in tts.synthesize(text, style, stop):
            if len(chunk):
                made_s += len(chunk) / tts.sample_rate
                if made_s > MAX_SENTENCE_S:
                    raise BackendError("tts", f"over {MAX_SENTENCE_S} s of speech for one "
                                       f"sentence of {len(text)} characters: the TTS runs on")
                yield to_int16(resampler.process(chunk, tts.sample_rate))
        yield to_int16(resampler.flush())

    return iterate_in_thread(made, stage="tts", failure="speech synthesis failed", name="tts")


async def speak_into(output: AudioOutput, tts: TextToSpeech, playback: Playback, sentence: str,
                     style: str = "default",
                     on_first_audio: Callable[[], None] | None = None) -> bool:
    """Synthesise one sentence into the call's output as it is made: the first chunk
    starts the sentence, later ones extend it. Returns whether any audio came.

    Cancelled midway (a barge-in), the sentence is closed with what it has, so the
    output never waits for a chunk that will not come."""
    pushed = False
    try:
        async for samples in call_rate_chunks(tts, sentence, style):
            if not len(samples):
                continue
            if pushed:
                output.extend(playback, samples)
                continue
            if on_first_audio is not None:
                on_first_audio()
            output.push(playback, samples, sentence, complete=False)
            pushed = True
    finally:
        if pushed:
            output.extend(playback, np.zeros(0, np.int16), complete=True)
    return pushed
