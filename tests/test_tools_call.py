"""Tools end to end over WebRTC: an aiortc caller asks a spoken question that needs a tool;
the daemon's LLM (the vLLM TEST DOUBLE, scripted to call the tool) gets the answer from a
real MCP server over stdio (tests/tools/mcp_test_server.py), and the answer is spoken back:
the received audio is transcribed and compared. Then a barge-in while a slow tool runs
cancels the tool on the server. STT, VAD and TTS (espeak-ng) are real."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import config_with_profile, requires_espeak
from tests.tools.harness import stdio_server
from tests.words import share_found
from voxlive.backends.loader import load_models
from voxlive.config import VoxliveConfig
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak
from voxlive.server.app import Daemon, running

pytestmark = [requires_espeak, pytest.mark.e2e]  # a whole call, models loaded here
pytest.importorskip("mcp", reason="the tools extra installs the MCP SDK (pip install mcp)")

PARIS = "The weather in Paris is sunny and 21 degrees."


def script(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
    """The double's tool choice, like a model's: by the user's last sentence (a turn whose
    reply was cut before its first word is joined to the next one: conversation.py)."""
    if messages[-1]["role"] != "user":
        return []
    said = re.split(r"(?<=[.!?])\s+", messages[-1]["content"].strip().lower())[-1]
    if "weather" in said:
        return [("weather", {"city": "Paris"})]
    if "time" in said:
        return [("slow", {"seconds": 60})]
    return []


def reply(messages: list[dict[str, Any]]) -> str:
    results = [m["content"] for m in messages[-2:] if m.get("role") == "tool"]
    return " ".join(results) if results else "The capital of France is Paris."


async def test_a_spoken_question_gets_the_tools_answer_spoken_back(
        config: VoxliveConfig, tmp_path: Path) -> None:
    from tests.doubles.vllm_double import DEFAULT_MODEL, VllmDouble

    log = tmp_path / "server.log"
    async with VllmDouble(reply=reply, tool_script=script) as llm:
        tool_config = config_with_profile(config, "tools", {
            "stt": {"backend": "faster-whisper"},
            "llm": {"backend": "openai", "base_url": llm.base_url, "model": DEFAULT_MODEL},
            "tts": {"backend": "espeak-ng"},
            "tools": {"servers": [stdio_server(log)], "filler_after_s": 0.7},
        })
        models = load_models(tool_config.profile("tools"), progress=False)
        assert not await models.tools.connect()  # at start: no problems
        daemon = Daemon(tool_config, "tools", models, host="127.0.0.1", owns_models=True)
        async with running(daemon) as url:
            client = CallClient(url)
            await client.connect()
            try:
                asked = asyncio.get_running_loop().time()
                client.mic.say(espeak("What is the weather in Paris?", 48_000))
                answer = await client.wait_for(
                    lambda e: e["type"] == "assistant_text" and e["final"], 60)
                await client.wait_for(lambda e: e["type"] == "state"
                                      and e["state"] == "listening", 60,
                                      client.events.index(answer))
                calls = [e for e in client.events if e["type"] == "tool_call"]
                heard = models.stt.transcribe(client.received_audio(since=asked))

                mark = len(client.events)
                client.mic.say(espeak("Take your time.", 48_000))
                said = await client.wait_for(lambda e: e["type"] == "user_transcript", 60, mark)
                assert "time" in said["text"].lower(), said
                await client.wait_for(lambda e: e["type"] == "tool_call"
                                      and e["status"] == "running", 60, mark)
                filler = await client.wait_for(lambda e: e["type"] == "assistant_text"
                                               and not e["final"], 60, mark)
                client.mic.say(espeak("Stop. What is the capital of France?", 48_000))
                cancelled = await client.wait_for(lambda e: e["type"] == "tool_call"
                                                  and e["status"] == "cancelled", 60, mark)
                after = await client.wait_for(
                    lambda e: e["type"] == "assistant_text" and e["final"]
                    and e["turn"] > cancelled["turn"], 60, mark)
                for _ in range(300):
                    if "cancelled" in log.read_text():
                        break
                    await asyncio.sleep(0.1)
            finally:
                await client.close()

    assert [(e["name"], e["status"], e["arguments"]) for e in calls] == [
        ("weather", "running", "city=Paris"), ("weather", "ok", "city=Paris")]
    assert answer["text"] == PARIS
    assert share_found(PARIS, heard) >= 0.6, heard
    assert filler["text"] == "Let me check."
    assert "cancelled" in log.read_text().splitlines()
    assert "finished" not in log.read_text()
    assert after["text"] == "The capital of France is Paris."
