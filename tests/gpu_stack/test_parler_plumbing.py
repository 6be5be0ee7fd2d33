"""Parler-TTS plumbing on a tiny randomly initialised model of the real architecture.

The model (T5 encoder, Parler decoder, DAC codec) is built from a config, saved to a
folder and loaded through the backend's own loading code (voxlive.backends.loader), as
a user's downloaded model is. Random weights make noise, not speech: these tests prove
loading, streaming, cancellation and the description cache, not the voice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest

from tests.gpu_stack import generation_held, pending, require
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


# --- sentences of different calls in one generation (voxlive/backends/parler_batch.py) ---

def batches(parler) -> tuple[int, int]:
    return parler.batch_stats.batches, parler.batch_stats.items


def whole(parler, text: str) -> np.ndarray:
    return np.concatenate(list(parler.synthesize(text)))


def test_sentences_asked_together_share_one_generation(parler):
    texts = ["Good morning to you.", "The weather is fine.", "See you tomorrow then."]
    before = batches(parler)
    with ThreadPoolExecutor(3) as pool:
        with generation_held(parler):
            futures = [pool.submit(whole, parler, text) for text in texts]
            pending(parler, 3)
        audios = [future.result(120) for future in futures]
    after = batches(parler)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 3)
    hop = parler.sample_rate / parler.frame_rate
    for audio in audios:
        assert len(audio) / hop == pytest.approx(FRAMES - 4, rel=0.25)
        assert np.isfinite(audio).all() and audio.std() > 0
    # Each caller got its own sentence, not a neighbour's.
    assert not np.allclose(audios[0][:2000], audios[1][:2000])


@pytest.mark.parametrize("codec_one_pass", [False, True], ids=["codec in turn", "codec one pass"])
def test_a_sentence_in_a_batch_is_what_it_is_alone(parler, monkeypatch, codec_one_pass):
    """Greedy decoding, so that equal inputs give equal codes. The batch's longest
    sentence has no prompt padding, so its row must come out exactly as alone: the
    other rows do not leak into it, in the decoder or in the codec (one pass for the
    rows' chunks, as on a GPU, or a pass each, as on a CPU)."""
    monkeypatch.setattr(parler.model.generation_config, "do_sample", False)
    monkeypatch.setattr(parler, "codec_one_pass", codec_one_pass)
    longest = "This is the longest sentence of the batch by a good many words."
    others = ["Hi.", "A short one."]
    lengths = [len(parler.tokenizer(text).input_ids) for text in [longest, *others]]
    assert lengths[0] > max(lengths[1:])
    alone = whole(parler, longest)
    with ThreadPoolExecutor(3) as pool:
        with generation_held(parler):
            futures = [pool.submit(whole, parler, text) for text in [longest, *others]]
            pending(parler, 3)
        together = futures[0].result(120)
    assert len(together) == len(alone)
    assert np.allclose(together, alone, atol=1e-5)


def test_stopping_one_sentence_leaves_the_others_in_its_batch_going(parler):
    counter = StepCounter(parler)
    steps_when_stopped = []

    def first_chunk_then_close() -> None:
        stream = parler.synthesize("Interrupted after the first chunk of this one.")
        assert len(next(stream))
        stream.close()  # returns once its row has stopped
        steps_when_stopped.append(counter.steps)

    try:
        with ThreadPoolExecutor(2) as pool:
            with generation_held(parler):
                stopped = pool.submit(first_chunk_then_close)
                going = pool.submit(whole, parler, "This one is heard to its end.")
                pending(parler, 2)
            stopped.result(120)
            audio = going.result(120)
    finally:
        counter.close()
    hop = parler.sample_rate / parler.frame_rate
    assert len(audio) / hop == pytest.approx(FRAMES - 4, rel=0.25)
    assert steps_when_stopped[0] < parler.chunk_frames + 4 < counter.steps


def test_the_next_generation_takes_the_most_urgent_sentences(parler):
    """Five sentences wait for a voice that makes four at once: four second sentences of
    replies that are still speaking (due when their audio runs out), asked first, and one
    reply's first sentence (its caller waits in silence: due now), asked last. The first
    sentence goes into the next generation; the least urgent of the others waits."""
    from voxlive.sched.fair import ReplyPacer
    from voxlive.sched.reply import _CURRENT

    now = time.monotonic()
    speaking = []
    for n in range(4):
        pacer = ReplyPacer(now - 1.0, margin_s=0.0)
        pacer.made(now - 0.5, 10.0 + n)  # its audio lasts 9.5 + n s more
        speaking.append(pacer)
    first_audio: dict[str, float] = {}

    def speak(text: str, pacer: ReplyPacer) -> None:
        _CURRENT.set(pacer)
        for _chunk in parler.synthesize(text):
            first_audio.setdefault(text, time.monotonic())

    before = batches(parler)
    texts = [f"Later sentence number {n}." for n in range(4)]
    with ThreadPoolExecutor(5) as pool:
        with generation_held(parler):
            futures = [pool.submit(speak, text, pacer)
                       for text, pacer in zip(texts, speaking, strict=True)]
            pending(parler, 4)
            futures.append(pool.submit(speak, "A caller waits for me.",
                                       ReplyPacer(time.monotonic())))
            pending(parler, 5)
        for future in futures:
            future.result(120)
    after = batches(parler)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 5)
    # The least urgent went into the second generation, after every other sentence's.
    assert first_audio["A caller waits for me."] < first_audio[texts[3]]
    assert max(first_audio[text] for text in texts[:3]) < first_audio[texts[3]]


def test_a_sentence_cancelled_while_it_waits_is_never_generated(parler):
    before = batches(parler)
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        with generation_held(parler):
            future = pool.submit(lambda: list(parler.synthesize("Never said.", stop=stop)))
            pending(parler, 1)
            stop.set()
        assert future.result(60) == []
    assert batches(parler) == before


def test_a_failed_generation_is_an_error_for_every_sentence_in_it(parler, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(parler.model, "generate", broken)
    with ThreadPoolExecutor(2) as pool:
        with generation_held(parler):
            futures = [pool.submit(whole, parler, text) for text in ["One.", "Two."]]
            pending(parler, 2)
        for future in futures:
            with pytest.raises(BackendError, match="out of memory"):
                future.result(60)


@contextmanager
def decoder_rows(parler):
    """The batch size (rows: sentences x codebooks) of every decoder forward pass."""
    rows: list[int] = []

    def record(module, args, kwargs, output) -> None:
        tokens = kwargs.get("input_ids")
        rows.append((tokens if tokens is not None else kwargs["inputs_embeds"]).shape[0])

    handle = parler.model.decoder.register_forward_hook(record, with_kwargs=True)
    try:
        yield rows
    finally:
        handle.remove()


def test_compiled_every_generation_runs_max_batch_rows(parler, monkeypatch):
    """A compiled model keeps one static cache and one set of graphs, so a lone sentence
    runs with filler rows that are stopped from the first step. (torch.compile itself
    needs CUDA; the rows and the prompt buckets are the same without it.)"""
    monkeypatch.setattr(parler, "compiled", True)
    codebooks = parler.model.decoder.num_codebooks
    before = batches(parler)
    with decoder_rows(parler) as rows:
        audio = whole(parler, "A lone sentence.")
    assert set(rows) == {parler.max_batch * codebooks}
    assert batches(parler)[1] - before[1] == 1
    hop = parler.sample_rate / parler.frame_rate
    assert len(audio) / hop == pytest.approx(FRAMES - 4, rel=0.25)
    # The warm-up makes its graphs at that same batch size, for each prompt bucket.
    with decoder_rows(parler) as rows:
        parler._warm_up()
    assert rows and set(rows) == {parler.max_batch * codebooks}
