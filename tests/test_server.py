"""The daemon over HTTP and real WebRTC (aiortc client): signalling, bad input, failures.

The LLM here is the vLLM test double; STT (faster-whisper) and TTS (espeak-ng) are real.
"""

from __future__ import annotations

import json
import re

import aiohttp
import pytest

from tests.conftest import requires_espeak
from voxlive.emotion.style import prompt_tag
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak
from voxlive.server.ice import filter_remote_candidates

pytestmark = requires_espeak


async def post_offer(url: str, data: bytes | str, content_type: str = "application/json"
                     ) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(
        f"{url}/offer", data=data, headers={"Content-Type": content_type}
    ) as response:
        return response.status, await response.json()


async def test_health_config_and_page(double_server) -> None:  # noqa: ANN001
    url, _ = double_server
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as r:
            health = await r.json()
        assert r.status == 200 and health["status"] == "ok" and health["calls"] == 0
        assert set(health["models"]) == {"vad", "stt", "llm", "tts", "emotion"}
        async with http.get(f"{url}/config") as r:
            assert await r.json() == {"ice_servers": [], "profile": "double", "kiosk": False}
        async with http.get(f"{url}/") as r:
            assert "<button" in await r.text()
        async with http.get(f"{url}/static/app.js") as r:
            assert r.status == 200 and "createDataChannel" in await r.text()


GOOD_START = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("not json at all", 400, "not JSON"),
        (json.dumps(["sdp"]), 400, "JSON object"),
        (json.dumps({"sdp": GOOD_START, "type": "answer"}), 400, '"type" must be "offer"'),
        (json.dumps({"sdp": 42, "type": "offer"}), 400, "SDP offer"),
        (json.dumps({"sdp": GOOD_START + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "type": "offer"}),
         400, "no audio"),
        (json.dumps({"sdp": GOOD_START + "a=fingerprint:sha-256 AB\r\nm=audio x garbage\r\n",
                     "type": "offer"}),
         400, "could not be used"),
        (json.dumps({"sdp": "v=0" + "x" * 300_000, "type": "offer"}), 413, "too large"),
    ],
    ids=["not-json", "not-object", "answer", "sdp-not-text", "no-audio", "malformed", "huge"],
)
async def test_bad_offers_get_a_clear_4xx(double_server, body: str, status: int,  # noqa: ANN001
                                          message: str) -> None:
    url, daemon = double_server
    got_status, reply = await post_offer(url, body)
    assert got_status == status
    assert message in reply["error"]
    assert daemon.calls == {}  # nothing half-set-up is left behind


async def test_a_call_works_after_bad_offers_and_answers_loopback_only(  # noqa: ANN001
        double_server, vllm_double) -> None:
    url, daemon = double_server
    await post_offer(url, "garbage")
    client = CallClient(url)
    try:
        await client.connect()
        answer_sdp = client.pc.remoteDescription.sdp
        addresses = re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) ", answer_sdp)
        assert addresses and set(addresses) == {"127.0.0.1"}
        assert len(daemon.calls) == 1

        client.send({"type": "ping"})
        await client.wait_for(lambda e: e["type"] == "pong", timeout=5)
        client.send({"type": "dance"})
        error = await client.wait_for(lambda e: e["type"] == "error", timeout=5)
        assert "unknown event type 'dance'" in error["message"]

        client.mic.say(espeak("What is the capital of France?", 48_000))
        said = await client.wait_for(lambda e: e["type"] == "user_transcript", timeout=30)
        assert "france" in said["text"].lower()
        reply = await client.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], timeout=30)
        assert reply["text"] == "The capital of France is Paris. It is lovely in spring."

        # How the question sounded reached the LLM as a system note when the estimate is
        # confident; the user's turn holds only their words.
        emotion = next(e for e in client.events if e["type"] == "user_emotion")
        prompt = vllm_double.requests[-1]["messages"]
        confident = bool(prompt_tag(emotion["label"], emotion["confidence"]))
        notes = " ".join(m["content"] for m in prompt if m["role"] == "system")
        assert (f"Voice tone now: {emotion['label']}." in notes) == confident
        assert prompt[-1]["content"] == said["text"]
        latency = await client.wait_for(lambda e: e["type"] == "turn_latency", timeout=30)
        assert latency["voice_to_voice_ms"] > latency["stt_ms"] > 0

        async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
            metrics = await r.text()
        count = re.search(r"^voxlive_voice_to_voice_seconds_count (\d+)$", metrics, re.M)
        assert count and int(count.group(1)) >= 1
        assert re.search(r"^voxlive_active_calls 1$", metrics, re.M)
        assert 'voxlive_voice_to_voice_seconds_bucket{le="+Inf"}' in metrics
    finally:
        await client.close()


async def test_llm_server_down_mid_call_reports_and_the_call_stays_up(  # noqa: ANN001
        double_server, vllm_double) -> None:
    url, daemon = double_server
    client = CallClient(url)
    other = CallClient(url)
    try:
        await client.connect()
        await vllm_double.stop()
        client.mic.say(espeak("Tell me a joke.", 48_000))
        error = await client.wait_for(lambda e: e["type"] == "error", timeout=30)
        assert error["stage"] == "llm"
        assert "cannot reach the LLM server" in error["message"]
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=10, start=client.events.index(error))

        await vllm_double.start()  # the server is back: the same call goes on
        await other.connect()  # and the daemon still takes new calls
        mark = len(client.events)
        client.mic.say(espeak("What is the capital of France?", 48_000))
        reply = await client.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], timeout=30, start=mark)
        assert "Paris" in reply["text"]
        assert len(daemon.calls) == 2
    finally:
        await client.close()
        await other.close()


def test_remote_candidates_off_loopback_are_dropped() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host\r\n"
        "a=candidate:2 1 udp 2122260223 127.0.0.1 54322 typ host\r\n"
        "a=candidate:3 1 udp 2122260223 3f1c-uuid.local 54323 typ host\r\n"
        "a=candidate:4 1 udp 2122260223 ::1 54324 typ host\r\n"
        "a=candidate:5 1 udp 1686052607 203.0.113.9 54325 typ srflx raddr 0.0.0.0 rport 0\r\n"
    )
    kept = filter_remote_candidates(sdp, loopback_only=True)
    assert "127.0.0.1" in kept and "::1" in kept
    for dropped in ("192.168.1.20", ".local", "203.0.113.9"):
        assert dropped not in kept
    # Beyond loopback: LAN and public candidates stay; loopback and mDNS names go
    wide = filter_remote_candidates(sdp, loopback_only=False)
    assert "192.168.1.20" in wide and "203.0.113.9" in wide
    assert "127.0.0.1" not in wide and ".local" not in wide
