"""The shared models on the real small embedded stack: llama.cpp time-sliced between two
replies (voxlive/sched/llm.py) and whisper batched across calls (voxlive/sched/stt.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np

from tests.conftest import requires_espeak
from voxlive.backends.loader import Models
from voxlive.sched.llm import FairLlamaCpp
from voxlive.sched.stt import BatchedSTT

QUESTIONS = ("Name three colours of the rainbow and say why the sky is blue.",
             "Tell me about cats and dogs as pets, in a few sentences.")


async def _collect(llm: FairLlamaCpp, question: str, log: list[tuple[float, str, str]]
                   ) -> str:
    text = ""
    async for piece in llm.stream([{"role": "user", "content": question}]):
        text += piece
        log.append((time.monotonic(), question, piece))
    return text


async def test_two_replies_take_turns_and_each_says_what_it_says_alone(
        embedded_models: Models) -> None:
    llm = embedded_models.llm
    assert isinstance(llm, FairLlamaCpp)  # load_models shares it
    config = llm.inner.config
    llm.inner.config = config.model_copy(update={"temperature": 0.0})  # greedy: repeatable
    try:
        alone = [await _collect(llm, q, []) for q in QUESTIONS]
        log: list[tuple[float, str, str]] = []
        switches = llm.switches
        together = await asyncio.gather(*(_collect(llm, q, log) for q in QUESTIONS))
    finally:
        llm.inner.config = config
    # Saving and restoring each reply's sequence changes nothing in what it says.
    assert together == alone
    assert llm.switches > switches
    # The second question's first words came before the first reply was over.
    first_of_second = min(t for t, q, _ in log if q == QUESTIONS[1])
    end_of_first = max(t for t, q, _ in log if q == QUESTIONS[0])
    assert first_of_second < end_of_first


async def test_a_reply_closed_early_frees_the_model(embedded_models: Models) -> None:
    llm = embedded_models.llm
    stream = llm.stream([{"role": "user", "content": QUESTIONS[0]}])
    async for _ in stream:
        break
    await stream.aclose()
    text = await _collect(llm, QUESTIONS[1], [])
    assert text.strip()


@requires_espeak
def test_utterances_from_three_calls_are_transcribed_in_batches(tiny_en: Any) -> None:
    """tiny.en batched as load_models shares a faster-whisper STT (embedded-small hears
    with Moonshine, which is not batched)."""
    from voxlive.audio.resample import MODEL_RATE
    from voxlive.harness.speech import espeak

    stt = BatchedSTT(tiny_en)
    phrases = ["What is the capital of France?", "How many days are in a week?",
               "What do bees make?"]
    audios = [espeak(p, MODEL_RATE) for p in phrases]
    alone = [stt.inner.recognise(a).text for a in audios]
    results: dict[int, str] = {}
    batches = stt.stats.batches

    def ask(i: int) -> None:
        results[i] = stt.recognise(audios[i]).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    with stt.inner._lock:  # the model is busy: the first takes it alone, two meet in the queue
        threads[0].start()
        while not stt._busy or len(stt._queue):
            time.sleep(0.001)
        for thread in threads[1:]:
            thread.start()
        while len(stt._queue) < 2:
            time.sleep(0.001)
    for thread in threads:
        thread.join(60)
    assert [results[i] for i in range(3)] == alone
    assert stt.stats.batches - batches == 2  # one alone (it took the model), two together
    assert "France" in results[0] and np.isfinite(stt.stats.mean_batch)


def test_the_models_bench_measures_sentences_asked_of_the_voice_at_once(
        embedded_models: Models) -> None:
    """`bench capacity --mode models`' TTS round on the shared piper voice: every
    sentence is heard, one run each (piper does not batch), one after another."""
    from voxlive.bench.capacity_models import tts_round
    from voxlive.sched.tts import FairTTS

    tts = embedded_models.tts
    assert isinstance(tts, FairTTS) and tts.capacity == 1
    result = tts_round(tts, 3)
    firsts = result["first_audio_s"]
    assert len(firsts) == 3 and all(first == first and first > 0 for first in firsts)
    assert result["mean_batch"] == 1.0
    # Piper makes a sentence in one run: each first audio is the end of a run, and the
    # runs do not overlap.
    assert firsts[0] < firsts[1] < firsts[2] <= result["last_s"]
