"""A real WebRTC call whose replies are spoken by Parler-TTS (a tiny random model).

The embedded STT hears the question, the vLLM double (a test double: no vLLM runs on
a CPU) answers, and the Parler backend streams the answer into the call. Random
weights make noise, not words (plumbing only), so the test checks that the reply is
made in streamed chunks, as long as the model's frames, that it arrives in the call,
and that the voice style the user's emotion chose reached the description cache.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tests.conftest import TEST_STT, config_with_profile, requires_espeak
from tests.gpu_stack import generation_held, require
from voxlive.backends.loader import load_models
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak
from voxlive.server.app import Daemon, running

require("parler_tts")
pytestmark = requires_espeak

FRAMES = 48


@pytest.fixture(scope="module")
async def parler_call(config, vllm_double, tmp_path_factory):
    from tests.doubles.vllm_double import DEFAULT_MODEL
    from voxlive.harness.random_models import build_parler

    folder = build_parler(tmp_path_factory.mktemp("parler-call"), "tiny", frames=FRAMES)
    call_config = config_with_profile(config, "parler", {
        # As every e2e test hears the question (conftest: TEST_STT): over Opus tiny.en's
        # short window sometimes hears "capital and friends".
        "stt": {"backend": "faster-whisper", **TEST_STT},
        "llm": {"backend": "openai", "base_url": vllm_double.base_url, "model": DEFAULT_MODEL,
                "connect_timeout_s": 1, "first_token_timeout_s": 5},
        "tts": {"backend": "parler", "model": str(folder), "device": "cpu",
                "max_new_tokens": FRAMES + 8},
        "emotion": {"backend": "prosody"},
    })
    models = load_models(call_config.profile("parler"), progress=False)
    daemon = Daemon(call_config, "parler", models, host="127.0.0.1")
    async with running(daemon) as url:
        yield url, models
    await models.aclose()


async def test_a_reply_is_streamed_by_parler_into_the_call(parler_call, monkeypatch):
    url, models = parler_call
    tts = models.tts
    made: list[int] = []
    synthesize = tts.synthesize

    def counted(text: str, style: str = "default", stop=None):
        for chunk in synthesize(text, style, stop):
            made.append(len(chunk))
            yield chunk

    monkeypatch.setattr(tts, "synthesize", counted)
    client = CallClient(url)
    await client.connect()
    try:
        client.mic.say(espeak("What is the capital of France?", 48_000))
        said = await client.wait_for(lambda e: e["type"] == "user_transcript", timeout=60)
        assert "france" in said["text"].lower()
        replied = await client.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], timeout=120)
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=120, start=client.events.index(replied))
        sentences = 2  # the double's reply: "The capital of France is Paris. It is ..."
        # Made: each sentence in several chunks, as long as the model's frames.
        expected_s = sentences * (FRAMES - 4) / tts.frame_rate
        assert len(made) >= 2 * sentences
        assert sum(made) / tts.sample_rate == pytest.approx(expected_s, rel=0.3)
        # Heard: random weights make audio that is mostly a DC offset, which Opus does not
        # carry, so only part of it arrives as sound; but it does arrive.
        audio = client.received_audio()
        frames = audio[: len(audio) // 960 * 960].reshape(-1, 960)
        rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
        assert (rms > 1e-5).sum() * 0.02 > 0.25 * expected_s
        latency = next(e for e in client.events if e["type"] == "turn_latency")
        assert latency["turn"] == said["turn"]
        # The style picked from how the user sounded was described and encoded once.
        emotion = next(e for e in client.events if e["type"] == "user_emotion")
        assert emotion["turn"] == said["turn"]
        assert tts.description_encodings >= 1
        assert {style for _speaker, style in tts._descriptions} <= {"default", "happy",
                                                                   "enunciated"}
    finally:
        await client.close()


async def test_two_calls_first_sentences_share_a_generation(parler_call):
    """Two callers ask at once; their replies' first sentences meet at the voice while
    a generation runs (held here), and the next generation makes both: each call hears
    its reply, and the daemon's TTS stats count a batch of two."""
    url, models = parler_call
    parler = models.tts.inner  # behind the daemon's TTS scheduler
    clients = [CallClient(url), CallClient(url)]
    for client in clients:
        await client.connect()
    try:
        largest_before = models.tts.stats.largest
        with generation_held(parler, at_most_s=180):
            for client in clients:
                client.mic.say(espeak("What is the capital of France?", 48_000))
            deadline = time.monotonic() + 150  # a safety net, not a timing
            while len(parler._pending) < 2:
                assert time.monotonic() < deadline, "the two first sentences never met"
                await asyncio.sleep(0.05)
            assert models.tts.stats.largest == largest_before  # nothing made while held
        for client in clients:
            replied = await client.wait_for(
                lambda e: e["type"] == "assistant_text" and e["final"], timeout=120)
            await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                                  timeout=120, start=client.events.index(replied))
            audio = client.received_audio()
            assert len(audio) and np.abs(audio).max() > 0
        assert models.tts.stats.largest >= 2
        assert models.tts.stats.items > models.tts.stats.batches  # a batch held more than one
    finally:
        for client in clients:
            await client.close()
