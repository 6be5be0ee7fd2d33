"""End to end over real WebRTC on the embedded stack with its end-of-turn detector
(Smart Turn + SmolLM2's words): a request with a thinking pause inside is answered as a
whole, not cut off at the pause as the fixed 480 ms silence rule would."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak, silence
from voxlive.server.app import Daemon, running
from voxlive.turn.detector import EndOfTurnDetector

pytestmark = requires_espeak


@pytest.fixture
async def patient_server(config: VoxliveConfig, embedded_models: Models
                         ) -> AsyncIterator[str]:
    """The embedded daemon, its detector given all the time a busy CI machine needs: this
    test is about the policy, not the detector's speed (a detector past its timeout falls
    back to the fixed rule, which would cut the turn at the pause)."""
    detector = embedded_models.turn_detector
    assert detector is not None, "the embedded profile has an end-of-turn detector"
    patient = EndOfTurnDetector(detector.config.model_copy(update={"timeout_ms": 20_000}),
                                detector.audio_model, detector.text_model)
    models = dataclasses.replace(embedded_models, turn_detector=patient)
    async with running(Daemon(config, "embedded", models, host="127.0.0.1")) as url:
        yield url


async def test_a_thinking_pause_does_not_end_the_turn(patient_server: str) -> None:
    client = CallClient(patient_server)
    await client.connect()
    try:
        client.mic.say(np.concatenate([
            espeak("I would like to", 48_000), silence(1.2, 48_000),
            espeak("order a pizza for two people.", 48_000)]))
        # The first half may get a speculative reply (even a whole one, on a fast machine)
        # that is cancelled unheard when the user goes on: the answer is the whole request's.
        whole = await client.wait_for(
            lambda e: e["type"] == "user_transcript" and "pizza" in e["text"].lower(),
            timeout=90)
        reply = await client.wait_for(lambda e: e["type"] == "assistant_text" and e["final"]
                                      and e["turn"] == whole["turn"], timeout=90)
        # Its text may come before its turn is committed (it is made speculatively, and
        # espeak's flat ending can leave the verdict "unfinished" until the 2 s maximum).
        await client.wait_for(
            lambda e: e["type"] == "turn_committed" and e["turn"] == reply["turn"], timeout=10)
        kinds = [e["type"] for e in client.events]
        # (The speculative transcript of the first half may be shown during the pause; the
        # turn it belonged to is reopened, never committed nor heard.)
        said = [e for e in client.events if e["type"] == "user_transcript"][-1]
        assert "like to" in said["text"].lower() and "pizza" in said["text"].lower()
        assert said["turn"] == reply["turn"]
        commits = [e for e in client.events if e["type"] == "turn_committed"]
        assert [c["turn"] for c in commits] == [reply["turn"]]
        last_speech = max(i for i, k in enumerate(kinds) if k == "speech_started")
        assert kinds.index("turn_committed") > last_speech  # not during the pause
        assert commits[0]["rule"] in ("semantic", "timeout")
        # Each verdict it gave heard the voice, and the words unless the voice was sure
        # (a verdict on the pause may not come at all: the speech that goes on cancels it).
        judged = [e for e in client.events if e["type"] == "turn_judged"]
        assert all(j["audio"] is not None for j in judged)
        assert all(j["text"] is not None or j["complete"] for j in judged)
    finally:
        await client.close()


async def test_a_finished_real_question_ends_on_the_voice_alone(patient_server: str) -> None:
    """A real recording (asterisk's "You are currently the only person in this
    conference.", Smart Turn 0.97 offline) over WebRTC: the voice is sure, the turn
    commits without waiting for the words' signal."""
    from voxlive.audio.resample import CALL_RATE, MODEL_RATE, resample_once
    from voxlive.harness.turn_corpus import asterisk_prompts, trim

    try:
        [(_, audio)] = asterisk_prompts(("conf-onlyperson",)).values()
    except RuntimeError as exc:  # real_speech.CorpusError: no apt-get, no network
        pytest.skip(f"real human speech unavailable: {exc}")
    client = CallClient(patient_server)
    await client.connect()
    try:
        client.mic.say(resample_once(trim(audio, 0.005), MODEL_RATE, CALL_RATE))
        await client.wait_for(lambda e: e["type"] == "turn_latency", timeout=90)
        [commit] = [e for e in client.events if e["type"] == "turn_committed"]
        assert commit["rule"] == "semantic"
        [judged] = [e for e in client.events if e["type"] == "turn_judged"]
        assert judged["complete"] and judged["audio"] >= 0.75 and judged["text"] is None
    finally:
        await client.close()
