"""A TTS generator consumed from asyncio: the call's audio made in the worker thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from voxlive.audio.resample import CALL_RATE
from voxlive.backends import tts_stream
from voxlive.backends.base import BackendError


class ToneTts:
    """Real audio (a 440 Hz tone) in 0.1 s chunks, `seconds` of it; None: for ever."""

    sample_rate = 22_050
    description = "tone"

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.stopped = threading.Event()

    def synthesize(self, text: str, style: str, stop: threading.Event) -> Iterator[np.ndarray]:
        step = self.sample_rate // 10
        made = 0
        while self.seconds is None or made < self.seconds * self.sample_rate:
            if stop.is_set():
                self.stopped.set()
                return
            t = np.arange(made, made + step) / self.sample_rate
            made += step
            yield (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


async def test_the_call_gets_int16_at_its_rate_with_the_resamplers_tail() -> None:
    chunks = [c async for c in tts_stream.call_rate_chunks(ToneTts(1.0), "A tone.")]
    assert all(c.dtype == np.int16 for c in chunks)
    total = sum(len(c) for c in chunks)
    assert abs(total - CALL_RATE) <= CALL_RATE // 100  # one second, within 10 ms
    assert np.abs(np.concatenate(chunks)).max() > 0.25 * 32767


async def test_a_tts_that_never_ends_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts_stream, "MAX_SENTENCE_S", 1)
    endless = ToneTts(None)
    made = 0.0
    with pytest.raises(BackendError, match="over 1 s of speech") as error:
        async for chunk in tts_stream.call_rate_chunks(endless, "Hello."):
            made += len(chunk) / CALL_RATE
    assert error.value.stage == "tts" and made <= 1.0
