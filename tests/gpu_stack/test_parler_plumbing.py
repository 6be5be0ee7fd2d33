"""Parler-TTS plumbing on a tiny randomly initialised model of the real architecture.

The model (T5 encoder, Parler decoder, DAC codec) is built from a config, saved to a
folder and loaded through the backend's own loading code (voxlive.backends.loader), as
a user's downloaded model is. Random weights make noise, not speech: these tests prove
loading, streaming, cancellation and the description cache, not the voice.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tests.gpu_stack import require
from voxlive.backends.base import BackendError
from voxlive.backends.tts_stream import speech_chunks
from voxlive.config import ParlerTts, Profile

require("parler_tts")

FRAMES = 48
"""Codec frames per sentence (the random model's fixed length): about 0.56 s of audio."""


@pytest.fixture(scope="module")
def parler_folder(tmp_path_factory):
    from voxlive.harness.random_models import build_parler

    return build_parler(tmp_path_factory.mktemp("tiny-parler"), "tiny", frames=FRAMES)


@pytest.fixture(scope="module")
def parler(parler_folder):
    from voxlive.backends.loader import load_stage

    profile = Profile.model_validate({
        "stt": {"backend": "faster-whisper"},
        "llm": {"backend": "llama-cpp"},
        "tts": {"backend": "parler", "model": str(parler_folder), "device": "cpu",
                "chunk_s": 0.2, "max_new_tokens": FRAMES + 8},
    })
    tts, _seconds = load_stage("tts", profile)
    return tts


class StepCounter:
    """Counts decoder forward passes: one per generated codec frame."""

    def __init__(self, tts):
        self.steps = 0
        self._handle = tts.model.decoder.register_forward_hook(self._count)

    def _count(self, *args) -> None:
        self.steps += 1

    def close(self) -> None:
        self._handle.remove()


def test_loads_from_the_folder_and_streams_several_chunks(parler, parler_folder):
    assert str(parler_folder) in parler.description and "eager" in parler.description
    assert parler.sample_rate == 44_100 and parler.frame_rate == 86
    assert parler.chunk_frames == round(0.2 * 86)
    started = time.perf_counter()
    arrivals, chunks = [], []
    for chunk in parler.synthesize("Hello there, how are you today?"):
        arrivals.append(time.perf_counter() - started)
        chunks.append(chunk)
    assert len(chunks) >= 3, "a sentence of 48 frames comes in chunks of 17 frames"
    assert all(c.dtype == np.float32 and c.ndim == 1 and len(c) for c in chunks)
    audio = np.concatenate(chunks)
    seconds = len(audio) / parler.sample_rate
    hop = parler.sample_rate / parler.frame_rate
    # Every frame but the delay pattern's (one per codebook) becomes audio.
    assert seconds == pytest.approx((FRAMES - 4) * hop / parler.sample_rate, rel=0.25)
    assert np.isfinite(audio).all() and audio.std() > 0
    # Streamed: the first chunk came well before the last.
    assert arrivals[0] < arrivals[-1] / 2


def test_closing_the_stream_stops_generation_at_the_next_step(parler):
    counter = StepCounter(parler)
    try:
        stream = parler.synthesize("This sentence is cut off after its first chunk.")
        first = next(stream)
        assert len(first)
        stream.close()
        assert counter.steps < parler.chunk_frames + 4 < FRAMES
    finally:
        counter.close()


async def test_a_cancelled_reply_task_stops_the_synthesis(parler):
    """The path a barge-in takes: the asyncio task speaking the sentence is cancelled."""
    counter = StepCounter(parler)
    first_chunk = asyncio.Event()
    steps_at_first_chunk = []

    async def speak() -> None:
        async for _chunk in speech_chunks(parler, "Interrupt me as soon as I start."):
            steps_at_first_chunk.append(counter.steps)
            first_chunk.set()

    try:
        task = asyncio.create_task(speak())
        await asyncio.wait_for(first_chunk.wait(), timeout=60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)  # the worker thread notices at its next step
        stopped_at = counter.steps
        await asyncio.sleep(0.5)
        assert counter.steps == stopped_at, "generation went on after the cancel"
        # At the next step, not at the next chunk: the stop flag reaches the decoder
        # loop while the reader is still waiting for that chunk.
        assert stopped_at - steps_at_first_chunk[0] < parler.chunk_frames
    finally:
        counter.close()


def test_the_description_is_encoded_once_per_style(parler):
    from voxlive.backends.tts_parler import describe

    parler._descriptions.clear()
    parler.description_encodings = 0
    for _ in parler.synthesize("One.", "default"):
        pass
    for _ in parler.synthesize("Two.", "default"):
        pass
    assert parler.description_encodings == 1
    for _ in parler.synthesize("Three!", "cheerful"):
        pass
    assert parler.description_encodings == 2
    assert set(parler._descriptions) == {("Thomas", "default"), ("Thomas", "happy")}
    assert describe("Thomas", "happy") == "Thomas speaks in a happy tone with very clear audio."
    # The cached encoding is what the text encoder gives for that description.
    import torch

    tokens = parler.tokenizer(describe("Thomas", "happy"), return_tensors="pt")
    with torch.inference_mode():
        fresh = parler.model.text_encoder(**tokens).last_hidden_state
    cached, mask = parler._descriptions[("Thomas", "happy")]
    assert torch.equal(mask, tokens.attention_mask)
    if parler.model.text_encoder.config.hidden_size == parler.model.decoder.config.hidden_size:
        assert torch.allclose(cached, fresh)


def test_a_failure_inside_generation_is_a_backend_error_not_a_hang(parler, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("CUDA error: an illegal memory access")

    monkeypatch.setattr(parler.model, "generate", broken)
    with pytest.raises(BackendError, match="illegal memory access"):
        list(parler.synthesize("This fails."))


def test_cuda_asked_for_without_a_gpu_is_a_clear_error(parler_folder):
    import torch

    from voxlive.backends.tts_parler import ParlerTTS

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error path cannot be reached")
    with pytest.raises(BackendError, match="no CUDA GPU.*tts.device: cpu"):
        ParlerTTS(ParlerTts(backend="parler", model=str(parler_folder), device="cuda"))
