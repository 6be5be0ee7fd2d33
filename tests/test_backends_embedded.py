"""Each embedded backend for real, on speech made with espeak-ng.

Models come from pip packages (no download): faster-whisper tiny.en, SmolLM2-135M GGUF on
llama.cpp, the piper voice en_US-joe-medium. They are loaded once per run (conftest).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.conftest import requires_espeak
from tests.words import share_found, words
from voxlive.audio.resample import MODEL_RATE, resample_once
from voxlive.backends.loader import Models
from voxlive.backends.tts_espeak import EspeakTTS
from voxlive.config import EspeakTts
from voxlive.harness.speech import espeak


@requires_espeak
@pytest.mark.parametrize("sentence", [
    "What is the capital of France?",
    "Please tell me a short story about a brave little dog.",
])
def test_whisper_transcribes_espeak_speech_word_for_word(embedded_models: Models,
                                                         sentence: str) -> None:
    text = embedded_models.stt.transcribe(espeak(sentence, MODEL_RATE))
    assert words(text) == words(sentence)


def test_whisper_gives_no_words_for_silence(embedded_models: Models) -> None:
    assert embedded_models.stt.transcribe(np.zeros(MODEL_RATE, np.float32)) == ""


async def collect(models: Models, question: str, limit: int | None = None) -> list[str]:
    messages = [{"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": question}]
    pieces: list[str] = []
    stream = models.llm.stream(messages)
    try:
        async for piece in stream:
            pieces.append(piece)
            if limit is not None and len(pieces) >= limit:
                break
    finally:
        await stream.aclose()
    return pieces


async def test_llama_cpp_streams_a_reply(embedded_models: Models) -> None:
    pieces = await collect(embedded_models, "What is the capital of France?")
    reply = "".join(pieces)
    assert len(pieces) > 3  # streamed, not one block
    assert len(words(reply)) >= 3
    assert "paris" in reply.lower()  # SmolLM2-135M knows this one


async def test_closing_the_llama_stream_stops_generation(embedded_models: Models) -> None:
    pieces = await collect(embedded_models, "Count slowly from one to one hundred.", limit=2)
    assert len(pieces) == 2
    # the generation thread let go of the model: a new reply starts, not queued behind the
    # hundred numbers (the timeout is a hang guard, not a speed target)
    second = await asyncio.wait_for(collect(embedded_models, "Say hello.", limit=1), timeout=10)
    assert second


def speak_and_transcribe(models: Models, tts: object, sentence: str) -> str:
    chunks = list(tts.synthesize(sentence))  # type: ignore[attr-defined]
    assert chunks and all(c.dtype == np.float32 for c in chunks)
    audio = np.concatenate(chunks)
    assert np.abs(audio).max() > 0.1
    rate = tts.sample_rate  # type: ignore[attr-defined]
    assert 0.5 < len(audio) / rate < 10
    return models.stt.transcribe(resample_once(audio, rate, MODEL_RATE))


SENTENCE = "Good morning. The weather today is sunny and warm, with a light breeze."


def test_piper_speech_is_transcribed_back_to_its_words(embedded_models: Models) -> None:
    assert embedded_models.tts.sample_rate == 22_050
    heard = speak_and_transcribe(embedded_models, embedded_models.tts, SENTENCE)
    assert share_found(SENTENCE, heard) >= 0.85, heard


@requires_espeak
def test_espeak_speech_is_transcribed_back_to_its_words(embedded_models: Models) -> None:
    tts = EspeakTTS(EspeakTts(backend="espeak-ng"))
    heard = speak_and_transcribe(embedded_models, tts, SENTENCE)
    assert share_found(SENTENCE, heard) >= 0.85, heard


@requires_espeak
def test_whisper_is_unsure_of_hums_and_sure_of_words(embedded_models: Models,
                                                     config) -> None:  # noqa: ANN001
    threshold = config.turn.barge_in_min_confidence

    def confidence(text: str) -> float:
        audio = np.concatenate([np.zeros(2400, np.float32), espeak(text, MODEL_RATE),
                                np.zeros(1600, np.float32)])
        return embedded_models.stt.recognise(audio).confidence

    for said in ("Stop, please.", "Hold on.", "Wait a moment."):
        assert confidence(said) >= threshold, said
    for hum in ("hmm", "mm-hm"):
        assert confidence(hum) < threshold, hum
