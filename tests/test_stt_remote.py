"""RemoteSTT against VllmDouble, a TEST DOUBLE of vLLM's transcription endpoint.

The double transcribes for real with the embedded profile's faster-whisper tiny.en, so
these tests hear espeak-ng speech come back as words through the HTTP round trip. It is
not vLLM: what vLLM's Whisper does with the audio is not tested here.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import config_with_profile, requires_espeak
from tests.doubles.vllm_double import DEFAULT_STT_MODEL, VllmDouble, unused_base_url
from tests.words import words
from voxlive.backends.base import BackendError
from voxlive.backends.loader import load_stage
from voxlive.backends.stt_remote import DEFAULT_CONFIDENCE, RemoteSTT, confidence_of
from voxlive.config import RemoteStt, VoxliveConfig, check_profile
from voxlive.harness.speech import espeak, silence

SENTENCE = "Please tell me a short story about a brave little dog."


def make_stt(base_url: str, **overrides: Any) -> RemoteSTT:
    settings: dict[str, Any] = {"backend": "remote", "base_url": base_url,
                                "model": DEFAULT_STT_MODEL, "timeout_s": 20.0}
    settings.update(overrides)
    return RemoteSTT(RemoteStt(**settings))


@pytest.fixture(scope="module")
def whisper_stt(config: VoxliveConfig) -> Any:
    """The embedded profile's real faster-whisper, shared with the double."""
    stt, _seconds = load_stage("stt", config.profile("embedded"))
    return stt


@pytest.fixture(scope="module")
async def stt_double(whisper_stt: Any) -> AsyncIterator[VllmDouble]:
    async with VllmDouble(stt=whisper_stt) as server:
        yield server


@pytest.fixture(scope="module")
def speech() -> Any:
    return espeak(SENTENCE, 16_000)


@requires_espeak
async def test_spoken_words_come_back(stt_double: VllmDouble, speech: Any) -> None:
    stt = make_stt(stt_double.base_url)
    # Blocking by design, like every STT backend: the runtime calls it in a thread.
    transcript = await asyncio.to_thread(stt.recognise, speech)

    assert words(transcript.text) == words(SENTENCE), transcript.text
    assert 0.0 < transcript.confidence <= 1.0
    assert transcript.confidence > 0.3  # clear synthetic speech, not a hum
    fields = stt_double.transcriptions[-1]
    assert fields == {"model": DEFAULT_STT_MODEL, "response_format": "verbose_json",
                      "temperature": "0", "language": "en"}
    assert stt.description == f"remote {DEFAULT_STT_MODEL} at {stt_double.base_url}"
    assert await asyncio.to_thread(stt.transcribe, speech) == transcript.text


@requires_espeak
async def test_silence_is_an_empty_transcript(stt_double: VllmDouble) -> None:
    stt = make_stt(stt_double.base_url)
    transcript = await asyncio.to_thread(stt.recognise, silence(1.0, 16_000))
    assert 0.0 <= transcript.confidence <= 1.0
    if not transcript.text:
        assert transcript.confidence == 0.0


@requires_espeak
async def test_falls_back_to_json_when_verbose_json_is_refused(whisper_stt: Any,
                                                               speech: Any) -> None:
    async with VllmDouble(stt=whisper_stt, verbose_json=False) as server:
        stt = make_stt(server.base_url, language=None)
        first = await asyncio.to_thread(stt.recognise, speech)
        second = await asyncio.to_thread(stt.recognise, speech)

    assert words(first.text) == words(SENTENCE), first.text
    assert second.text == first.text
    assert first.confidence == DEFAULT_CONFIDENCE  # json carries no log-probabilities
    formats = [fields["response_format"] for fields in server.transcriptions]
    assert formats == ["verbose_json", "json", "json"]  # refused once, then remembered
    assert "language" not in server.transcriptions[0]


def test_confidence_from_segments() -> None:
    segments = [{"text": " Hello", "avg_logprob": -0.1},
                {"text": " there my friend", "avg_logprob": -0.5},
                {"text": " x", "avg_logprob": None}]
    expected = math.exp((5 * -0.1 + 15 * -0.5) / 20)
    assert confidence_of({"segments": segments}, "Hello there my friend") == pytest.approx(
        expected)
    assert confidence_of({"text": "Hi"}, "Hi") == DEFAULT_CONFIDENCE
    assert confidence_of({"segments": [{"text": "", "avg_logprob": -1.0}]}, "") == 0.0
    assert confidence_of({"segments": [{"text": "a", "avg_logprob": 0.5}]}, "a") == 1.0


async def test_server_down_is_reported_quickly() -> None:
    base_url = unused_base_url()
    stt = make_stt(base_url, timeout_s=5.0)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        await asyncio.to_thread(stt.recognise, silence(0.5, 16_000))
    elapsed = time.monotonic() - started

    assert caught.value.stage == "stt"
    assert "cannot reach the STT server" in caught.value.message
    assert "connection refused" in caught.value.message
    assert base_url in caught.value.message
    assert "stt.base_url" in caught.value.message
    assert elapsed < 1.0


async def test_http_500_is_reported_with_the_status_and_the_body(whisper_stt: Any) -> None:
    async with VllmDouble(stt=whisper_stt, fail_status=500) as server:
        stt = make_stt(server.base_url)
        with pytest.raises(BackendError) as caught:
            await asyncio.to_thread(stt.recognise, silence(0.5, 16_000))
    message = caught.value.message
    assert caught.value.stage == "stt"
    assert "HTTP 500" in message
    assert "told to fail this transcription" in message  # the excerpt of the error body
    assert len(server.transcriptions) == 1  # a server error is not mistaken for a format


async def test_unknown_model_is_reported_with_a_hint(stt_double: VllmDouble) -> None:
    stt = make_stt(stt_double.base_url, model="no/such-whisper")
    with pytest.raises(BackendError) as caught:
        await asyncio.to_thread(stt.recognise, silence(0.5, 16_000))
    assert "HTTP 404" in caught.value.message
    assert "The model `no/such-whisper` does not exist." in caught.value.message
    assert "stt.model is 'no/such-whisper'" in caught.value.message


async def test_a_slow_server_times_out_within_timeout_s(whisper_stt: Any) -> None:
    timeout_s = 0.5
    async with VllmDouble(stt=whisper_stt, transcription_delay_s=10.0) as server:
        stt = make_stt(server.base_url, timeout_s=timeout_s)
        started = time.monotonic()
        with pytest.raises(BackendError) as caught:
            await asyncio.to_thread(stt.recognise, silence(0.5, 16_000))
        elapsed = time.monotonic() - started
    assert caught.value.stage == "stt"
    assert "did not answer within 0.5 s" in caught.value.message
    assert "stt.timeout_s" in caught.value.message
    assert timeout_s * 0.8 <= elapsed < timeout_s + 0.5


@requires_espeak
@pytest.mark.models  # whisper tiny.en behind the double
async def test_a_remote_stt_profile_loads_and_works(config: VoxliveConfig, speech: Any) -> None:
    # No STT handed in: the double builds the embedded faster-whisper itself, once.
    async with VllmDouble() as server:
        remote = config_with_profile(config, "remote-stt", {
            "stt": {"backend": "remote", "base_url": server.base_url,
                    "model": DEFAULT_STT_MODEL, "timeout_s": 20},
            "llm": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "unused"},
            "tts": {"backend": "espeak-ng"},
        })
        assert [p for p in check_profile(remote, "remote-stt") if ".stt" in p] == []

        stt, _seconds = load_stage("stt", remote.profile("remote-stt"))
        assert isinstance(stt, RemoteSTT)
        text = await asyncio.to_thread(stt.transcribe, speech)
    assert words(text) == words(SENTENCE), text
