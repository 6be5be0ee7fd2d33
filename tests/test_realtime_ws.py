"""The OpenAI Realtime API over a WebSocket, driven by the official openai SDK.

The daemon runs on loopback with real models: Silero VAD, faster-whisper tiny.en and
espeak-ng speech, with SmolLM2 (embedded profile) for the spoken question, and the
vLLM TEST DOUBLE (tests/doubles) where a test needs a known reply or a function call.
The client is `AsyncOpenAI(...).realtime.connect(model=...)`, as an application uses it.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import requires_espeak
from tests.realtime_helpers import RATE, Events, pcm16, question, send_audio
from tests.words import says, share_found, words
from voxlive.backends.base import Transcript
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.harness.speech import silence
from voxlive.server.app import Daemon, running

openai = pytest.importorskip(
    "openai", reason="the openai SDK (pip install 'openai[realtime]', in the test extra)")
pytest.importorskip("websockets", reason="openai[realtime] brings websockets")

pytestmark = requires_espeak

STORY = ("Once upon a time a small dragon lived in an old castle on a hill. Every morning "
         "she flew over the green valley and counted the sheep. One day a storm came and "
         "the dragon sheltered the sheep in the castle hall until the sun came back.")
WEATHER_TOOL = {"type": "function", "name": "get_weather",
                "description": "The weather in a city now.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}


def scripted_reply(messages: list[dict[str, Any]]) -> str:
    """The double's replies: a story when asked for one, the weather after a tool result."""
    last = messages[-1]
    if last["role"] == "tool":
        return f"The weather service says: {last['content']}."
    if "story" in str(last.get("content", "")).lower():
        return STORY
    return "The capital of France is Paris."


@pytest.fixture(scope="module")
async def scripted_double() -> AsyncIterator[Any]:
    """A TEST DOUBLE of vLLM (tests/doubles) with scripted replies and a tool call."""
    from tests.doubles.vllm_double import VllmDouble

    async with VllmDouble(reply=scripted_reply, tool_call="get_weather") as double:
        yield double


@pytest.fixture(scope="module")
async def scripted_models(double_models: Models, double_config: VoxliveConfig,
                          scripted_double: Any) -> AsyncIterator[Models]:
    """The double profile's real VAD, STT and TTS, with the scripted double as the LLM."""
    from voxlive.backends.llm_openai import OpenAIChatLLM

    llm_config = double_config.profile("double").llm.model_copy(
        update={"base_url": scripted_double.base_url})
    llm = OpenAIChatLLM(llm_config)
    yield dataclasses.replace(double_models, llm=llm)
    await llm.aclose()


@pytest.fixture
async def scripted_url(double_config: VoxliveConfig, scripted_models: Models
                       ) -> AsyncIterator[str]:
    async with running(Daemon(double_config, "double", scripted_models, "127.0.0.1")) as url:
        yield url


@pytest.fixture
async def embedded_url(config: VoxliveConfig, embedded_models: Models) -> AsyncIterator[str]:
    async with running(Daemon(config, "embedded", embedded_models, "127.0.0.1")) as url:
        yield url


def client(url: str) -> Any:
    # No key is configured on this loopback daemon; the SDK sends one anyway.
    # (the beta client always takes wss:// unless told the WebSocket base URL)
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-no-key-on-loopback",
                              websocket_base_url=f"{url.replace('http', 'ws', 1)}/v1")


async def test_spoken_question_gets_a_spoken_answer_that_matches_its_transcript(
        embedded_url: str, tiny_en: Any) -> None:
    async with client(embedded_url).realtime.connect(model="voxlive-embedded") as conn:
        events = Events(conn)
        created = await events.wait("session.created")
        assert created["session"]["audio"]["output"]["format"]["rate"] == RATE
        assert created["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        await conn.session.update(session={
            "type": "realtime",
            "instructions": "You are a helpful assistant. Answer in one short sentence.",
            "audio": {"input": {"transcription": {"model": "whisper-1"},
                                "turn_detection": {"type": "server_vad",
                                                   "silence_duration_ms": 500}}},
        })
        updated = await events.wait("session.updated")
        assert updated["session"]["instructions"].endswith("one short sentence.")

        await send_audio(conn, question("What is the capital of France?"))
        await events.wait("input_audio_buffer.speech_started")
        stopped = await events.wait("input_audio_buffer.speech_stopped")
        transcript = await events.wait(
            "conversation.item.input_audio_transcription.completed")
        assert says(transcript["transcript"], "What is the capital of France?"), transcript
        assert transcript["item_id"] == stopped["item_id"]
        done = await events.wait("response.done", timeout=120)
        response = done["response"]
        assert response["status"] == "completed", response
        said = (await events.wait("response.output_audio_transcript.done"))["transcript"]
        assert said.strip()
        assert [e for e in events.of("response.output_audio_transcript.delta")]
        assert response["output"][0]["content"][0]["transcript"] == said
        # The audio is the transcript, spoken: whisper hears the same words back.
        heard = tiny_en.transcribe(events.audio(response["id"]))
        assert share_found(said, heard) >= 0.6, (said, heard)
        assert response["usage"]["output_tokens"] > 0
        events.stop()


async def test_semantic_vad_ends_the_turn_within_its_eagerness(
        embedded_url: str, embedded_models: Models) -> None:
    """semantic_vad hands the pause to the profile's end-of-turn detector; eagerness "high"
    lets a pause that sounds unfinished (espeak-ng's flat ending often does) last 1 s, so a
    question followed by 1.6 s of streamed silence is answered either way (at the default
    2 s it would wait for audio that never comes)."""
    if embedded_models.turn_detector is None:
        pytest.skip("the embedded profile loads no end-of-turn detector")
    async with client(embedded_url).realtime.connect(model="voxlive-embedded") as conn:
        events = Events(conn)
        await events.wait("session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}})
        updated = await events.wait("session.updated")
        detection = updated["session"]["audio"]["input"]["turn_detection"]
        assert detection["type"] == "semantic_vad" and detection["eagerness"] == "high"
        await send_audio(conn, question("What is the capital of France?", tail_s=1.6))
        done = await events.wait("response.done", timeout=120)
        assert done["response"]["status"] == "completed", done["response"]
        events.stop()


async def test_text_message_and_text_response(scripted_url: str) -> None:
    async with client(scripted_url).realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await events.wait("session.updated")
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "What is the capital of France?"}]})
        added = await events.wait("conversation.item.added")
        await conn.response.create(response={"instructions": "Be brief."})
        done = await events.wait("response.done")
        assert done["response"]["status"] == "completed"
        text = (await events.wait("response.output_text.done"))["text"]
        assert text == "The capital of France is Paris."
        assert "".join(e["delta"] for e in events.of("response.output_text.delta")) == text
        assert not events.of("response.output_audio.delta")
        # the history holds both items, and the model was asked with the instructions
        item_id = done["response"]["output"][0]["id"]
        await conn.conversation.item.retrieve(item_id=item_id)
        got = await events.wait("conversation.item.retrieved")
        assert got["item"]["content"][0]["text"] == text
        await conn.conversation.item.delete(item_id=added["item"]["id"])
        assert (await events.wait("conversation.item.deleted"))["item_id"] == \
            added["item"]["id"]
        events.stop()


async def test_talking_over_the_answer_cancels_it_and_truncate_cuts_the_history(
        scripted_url: str, scripted_double: Any) -> None:
    async with client(scripted_url).realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1"}}}})
        await events.wait("session.updated")
        await send_audio(conn, question("Please tell me a story about a dragon."))
        created = await events.wait("response.created", timeout=60)
        first = await events.wait("response.output_audio.delta", timeout=60)
        mark = events.items.index(first)
        # The caller listens (its microphone sends silence) for a second, then talks.
        await send_audio(conn, silence(1.0, RATE), realtime=True)
        await send_audio(conn, question("Stop. What is the capital of France?"),
                         realtime=True)
        await events.wait("input_audio_buffer.speech_started", start=mark)
        done = await events.wait(lambda e: e["type"] == "response.done"
                                 and e["response"]["id"] == created["response"]["id"])
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
        item = done["response"]["output"][0]
        heard = item["content"][0]["transcript"]
        assert len(words(heard)) < len(words(STORY))  # only what was played is kept
        assert words(STORY)[: len(words(heard))] == words(heard)
        # The client says it played 500 ms of it: the history keeps less.
        await conn.conversation.item.truncate(item_id=item["id"], content_index=0,
                                              audio_end_ms=500)
        truncated = await events.wait("conversation.item.truncated")
        assert truncated["audio_end_ms"] == 500
        await conn.conversation.item.retrieve(item_id=item["id"])
        kept = (await events.wait("conversation.item.retrieved"))["item"]
        assert len(words(kept["content"][0]["transcript"])) <= len(words(heard))
        # ... and the interruption got its own answer
        answer = await events.wait(lambda e: e["type"] == "response.done"
                                   and e["response"]["id"] != created["response"]["id"])
        assert answer["response"]["status"] == "completed"
        events.stop()


async def test_push_to_talk_commits_and_answers_on_request(scripted_url: str) -> None:
    async with client(scripted_url).realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "turn_detection": None, "transcription": {"model": "whisper-1"}}}})
        updated = await events.wait("session.updated")
        assert updated["session"]["audio"]["input"]["turn_detection"] is None
        await send_audio(conn, question("What is the capital of France?", tail_s=0.3))
        assert not events.of("input_audio_buffer.speech_started")  # no VAD turns
        await conn.input_audio_buffer.commit()
        committed = await events.wait("input_audio_buffer.committed")
        await conn.response.create()
        transcript = await events.wait(
            "conversation.item.input_audio_transcription.completed")
        assert transcript["item_id"] == committed["item_id"]
        assert says(transcript["transcript"], "What is the capital of France?"), transcript
        done = await events.wait("response.done")
        assert done["response"]["status"] == "completed"
        assert events.audio(done["response"]["id"]).size > RATE  # over half a second
        assert not events.of("input_audio_buffer.speech_started")
        events.stop()


async def test_function_call_round_trip(scripted_url: str, scripted_double: Any) -> None:
    async with client(scripted_url).realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        await conn.session.update(session={"type": "realtime", "tools": [WEATHER_TOOL],
                                           "output_modalities": ["text"]})
        await events.wait("session.updated")
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "What is the weather in Paris?"}]})
        await conn.response.create()
        args = await events.wait("response.function_call_arguments.done")
        assert args["name"] == "get_weather"
        done = await events.wait("response.done")
        call = done["response"]["output"][0]
        assert call["type"] == "function_call" and call["call_id"] == args["call_id"]
        offered = scripted_double.requests[-1]["tools"]
        assert offered[0]["function"]["name"] == "get_weather"

        mark = len(events.items)
        await conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": call["call_id"],
            "output": "sunny, 21 degrees"})
        await conn.response.create()
        done = await events.wait("response.done", start=mark)
        text = done["response"]["output"][0]["content"][0]["text"]
        assert "sunny, 21 degrees" in text
        sent = scripted_double.requests[-1]["messages"]
        assert sent[-2]["tool_calls"][0]["id"] == call["call_id"]
        assert sent[-1] == {"role": "tool", "tool_call_id": call["call_id"],
                            "content": "sunny, 21 degrees"}
        events.stop()


async def test_bad_events_get_errors_and_the_session_lives(scripted_url: str) -> None:
    async with client(scripted_url).realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        await events.wait("session.created")
        bad = [
            ({"type": "response.dance", "event_id": "ev_1"}, "invalid_event_type"),
            ({"type": "input_audio_buffer.append", "event_id": "ev_2", "audio": "@@not b64"},
             None),
            ({"type": "session.update", "event_id": "ev_3", "session": {
                "type": "realtime", "audio": {"input": {"format": {"type": "audio/wav"}}}}},
             "invalid_audio_format"),
            ({"type": "input_audio_buffer.commit", "event_id": "ev_4"},
             "input_audio_buffer_commit_empty"),
            ({"type": "conversation.item.truncate", "event_id": "ev_5", "item_id": "nope",
              "content_index": 0, "audio_end_ms": 10}, "item_not_found"),
            ({"type": "session.update", "event_id": "ev_6", "session": {
                "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm",
                                                                   "rate": 16000}}}}},
             "invalid_audio_format"),
        ]
        for event, code in bad:
            await conn.send(event)
            error = await events.wait(lambda e, i=event["event_id"]: e["type"] == "error"
                                      and e["error"]["event_id"] == i)
            assert error["error"]["message"]
            if code:
                assert error["error"]["code"] == code
        # a truncated pcm16 sample is kept for the next chunk, not an error
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm16(
            silence(0.05, RATE))[:-1]).decode())
        await conn.session.update(session={"type": "realtime", "instructions": "Still here."})
        assert (await events.wait("session.updated"))["session"]["instructions"] == \
            "Still here."
        assert len(events.of("error")) == len(bad)
        events.stop()


async def test_beta_dialect_for_older_clients(scripted_url: str) -> None:
    """`client.beta.realtime` sends OpenAI-Beta: realtime=v1 and expects the old names."""
    async with client(scripted_url).beta.realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        await conn.session.update(session={"modalities": ["text"],
                                           "input_audio_format": "pcm16"})
        updated = await events.wait("session.updated")
        assert updated["session"]["output_modalities"] == ["text"]
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "What is the capital of France?"}]})
        await events.wait("conversation.item.created")  # beta name of .added
        await conn.response.create()
        done = await events.wait("response.done")
        assert done["response"]["status"] == "completed"
        text = (await events.wait("response.text.done"))["text"]
        assert text == "The capital of France is Paris."
        assert not events.of("response.output_text.delta") and events.of("response.text.delta")
        events.stop()


async def test_server_vad_without_create_response_waits_for_response_create(
        scripted_url: str) -> None:
    async with client(scripted_url).realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad", "create_response": False}}}})
        await events.wait("session.updated")
        await send_audio(conn, question("What is the capital of France?"))
        await events.wait("conversation.item.input_audio_transcription.completed")
        await conn.response.create()
        done = await events.wait("response.done")
        assert done["response"]["status"] == "completed"
        assert len(events.of("response.created")) == 1  # only the one asked for
        events.stop()


class FrenchHearingStt:
    """A TEST DOUBLE of an STT that hears French besides English (as the embedded
    profile's multilingual fallback does), recording the language each turn is told."""

    description = "french-hearing stt (scripted)"
    languages = ["fr"]

    def __init__(self) -> None:
        self.told: list[str | None] = []

    def recognise(self, audio: Any, language: str | None = None) -> Transcript:
        self.told.append(language)
        return Transcript("Oui.", 0.9, language=language)

    def transcribe(self, audio: Any) -> str:
        return self.recognise(audio).text


async def test_the_client_s_transcription_language_is_the_call_s(
        double_config: VoxliveConfig, scripted_models: Models) -> None:
    """`audio.input.transcription.language` tells the STT the call's language (backends/
    call_language.py); English, or a language the STT cannot hear, leaves it its own."""
    stt = FrenchHearingStt()
    models = dataclasses.replace(scripted_models, stt=stt)
    async with running(Daemon(double_config, "double", models, "127.0.0.1")) as url, \
            client(url).realtime.connect(model="voxlive") as conn:
        events = Events(conn)
        for language in ("fr", "it", "en"):
            start = len(events.items)
            await conn.session.update(session={"type": "realtime", "audio": {"input": {
                "turn_detection": None,
                "transcription": {"model": "whisper-1", "language": language}}}})
            await events.wait("session.updated", start=start)
            start = len(events.items)
            await send_audio(conn, silence(0.4, RATE))
            await conn.input_audio_buffer.commit()
            await events.wait("conversation.item.input_audio_transcription.completed",
                              start=start)
        assert stt.told == ["fr", None, None]
        events.stop()
