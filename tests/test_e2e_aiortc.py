"""End to end with an aiortc caller (no browser) on the real embedded stack:
Silero, faster-whisper tiny.en, SmolLM2 on llama.cpp, piper, over real WebRTC."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import requires_espeak
from tests.words import says, share_found
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak

pytestmark = requires_espeak


async def test_a_spoken_question_gets_a_spoken_answer(embedded_server: str,
                                                      tiny_en: Any) -> None:
    client = CallClient(embedded_server)
    await client.connect()
    try:
        asked = time.monotonic()
        client.mic.say(espeak("What is the capital of France?", 48_000))
        said = await client.wait_for(lambda e: e["type"] == "user_transcript", timeout=30)
        assert says(said["text"], "What is the capital of France?"), said
        reply = await client.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], timeout=60)
        assert reply["text"].strip()
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=60, start=client.events.index(reply))
        latency = next(e for e in client.events if e["type"] == "turn_latency")
        assert latency["turn"] == reply["turn"] == said["turn"]
        assert 0 < latency["voice_to_voice_ms"] < 30_000

        # How it was said arrives before the reply, for the page to show beside the words.
        kinds = [e["type"] for e in client.events]
        assert kinds.index("user_emotion") < kinds.index("assistant_text")
        emotion = next(e for e in client.events if e["type"] == "user_emotion")
        assert emotion["backend"].startswith("prosody") and emotion["turn"] == said["turn"]
        assert emotion["label"] in {"excited", "neutral", "low", "unknown"}
        assert latency["emotion_wait_ms"] < latency["stt_ms"]  # it ran beside STT

        states = [e["state"] for e in client.events if e["type"] == "state"]
        assert states == ["listening", "user_speaking", "thinking", "speaking", "listening"]

        audio = client.received_audio(since=asked)
        # The judge is Whisper (conftest: tiny_en): the profile's Moonshine heard piper's
        # "France is Paris" over Opus once as "Francis Perris".
        heard = tiny_en.transcribe(audio)
        assert share_found(reply["text"], heard) >= 0.6, (reply["text"], heard)
    finally:
        await client.close()
