"""The `remote` TTS backend against SpeechDouble, a TEST DOUBLE of an OpenAI-compatible
streaming speech server (tests/doubles/speech_double.py): any server that speaks OpenAI's
/v1/audio/speech, not voxlive's own (tests/test_serve_models.py runs it against that).
The double sends a tone, not speech: these tests prove the wire, streaming, cancellation
and failures, not a voice."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from tests.doubles.speech_double import RATE, SpeechDouble
from tests.doubles.vllm_double import unused_base_url
from voxlive.backends.base import BackendError
from voxlive.backends.tts_remote import RemoteTTS
from voxlive.config.schema import RemoteTts

pytestmark = pytest.mark.integration  # servers with timeouts
TEXT = "The capital of France is Paris, a city on the river Seine."


def make_tts(base_url: str, **overrides: Any) -> RemoteTTS:
    settings: dict[str, Any] = {"backend": "remote", "base_url": base_url, "model": "tts-1",
                                "voice": "alloy", "timeout_s": 5.0}
    settings.update(overrides)
    return RemoteTTS(RemoteTts(**settings))


def synthesize(tts: RemoteTTS, text: str = TEXT, style: str = "default") -> list[np.ndarray]:
    return list(tts.synthesize(text, style))


async def test_speech_streams_in_chunks_as_openai_pcm() -> None:
    async with SpeechDouble(chunk_delay_s=0.01) as server:
        chunks = await asyncio.to_thread(synthesize, make_tts(server.base_url), TEXT, "calm")
    audio = np.concatenate(chunks)
    assert len(chunks) > 3  # streamed, not one body
    assert audio.dtype == np.float32 and audio.size == int(len(TEXT) * 0.05 * RATE)
    assert 0.2 < float(np.abs(audio).max()) < 0.4  # the double's 0.3 tone, decoded right
    (request,) = server.requests
    assert request == {"model": "tts-1", "voice": "alloy", "input": TEXT,
                       "response_format": "pcm", "speed": 0.85}


async def test_a_stop_closes_the_stream_and_the_server_sees_it() -> None:
    async with SpeechDouble(chunk_delay_s=0.05, seconds_per_char=0.5) as server:
        stop = threading.Event()
        chunks = make_tts(server.base_url).synthesize(TEXT, "default", stop)

        def first_then_stop() -> int:
            next(chunks)
            stop.set()
            return sum(1 for _ in chunks)  # nothing more is yielded after the stop

        assert await asyncio.to_thread(first_then_stop) == 0
        await asyncio.wait_for(server.abort_event.wait(), 10)
    assert server.completed == 0
    assert server.sent_bytes < len(TEXT) * 0.5 * RATE * 2 / 4  # far from the whole text


async def test_a_slow_first_chunk_within_the_timeout_still_plays() -> None:
    async with SpeechDouble(first_chunk_delay_s=0.6) as server:
        chunks = await asyncio.to_thread(synthesize, make_tts(server.base_url, timeout_s=5))
    assert np.concatenate(chunks).size == int(len(TEXT) * 0.05 * RATE)


async def test_a_first_chunk_later_than_the_timeout_is_an_error() -> None:
    async with SpeechDouble(first_chunk_delay_s=3.0) as server:
        with pytest.raises(BackendError) as error:
            await asyncio.to_thread(synthesize, make_tts(server.base_url, timeout_s=0.5))
    assert error.value.stage == "tts" and "sent nothing for 0.5 s" in error.value.message


async def test_server_down_is_an_error_that_says_what_to_check() -> None:
    with pytest.raises(BackendError) as error:
        await asyncio.to_thread(synthesize, make_tts(unused_base_url()))
    assert error.value.stage == "tts"
    assert "cannot reach the speech server" in error.value.message
    assert "tts.base_url" in error.value.message


async def test_a_stream_that_breaks_off_is_an_error() -> None:
    async with SpeechDouble(cut_after_chunks=2, chunk_delay_s=0.05) as server:
        with pytest.raises(BackendError, match="broke off") as error:
            await asyncio.to_thread(synthesize, make_tts(server.base_url))
    assert error.value.stage == "tts"


async def test_an_http_error_carries_the_servers_message() -> None:
    async with SpeechDouble(fail_status=503) as server:
        with pytest.raises(BackendError) as error:
            await asyncio.to_thread(synthesize, make_tts(server.base_url))
    assert "HTTP 503" in error.value.message and "not loaded" in error.value.message


def test_models_yaml_takes_a_remote_tts_and_rejects_a_bad_url(config) -> None:  # noqa: ANN001
    from tests.conftest import config_with_profile
    from voxlive.backends.loader import load_stage

    remote = config_with_profile(config, "remote-tts", {
        "stt": {"backend": "faster-whisper"}, "llm": {"backend": "llama-cpp"},
        "tts": {"backend": "remote", "base_url": "http://127.0.0.1:9/v1", "voice": "x"}})
    backend, _ = load_stage("tts", remote.profile("remote-tts"))
    assert isinstance(backend, RemoteTTS) and backend.sample_rate == 24_000
    bad = config_with_profile(config, "bad", {
        "stt": {"backend": "faster-whisper"}, "llm": {"backend": "llama-cpp"},
        "tts": {"backend": "remote", "base_url": "ftp://x"}})
    with pytest.raises(BackendError, match="tts.base_url must be an http"):
        load_stage("tts", bad.profile("bad"))
