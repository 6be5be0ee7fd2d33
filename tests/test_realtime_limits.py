"""The Realtime API probed as a hostile or clumsy client would: what one client may send
and hold (voxlive/realtime/guard.py, ws.py, calls.py). Over a real WebSocket on loopback
with the official openai SDK; the daemon's STT and VAD are real, the LLM the vLLM TEST
DOUBLE (no reply is asked for)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.conftest import requires_espeak
from tests.realtime_helpers import RATE, Events, pcm16
from tests.slow_client import answer_to_unfinished_body
from tests.test_server_guard import raw_offer
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.config.limits import ServerLimits
from voxlive.realtime import guard
from voxlive.realtime.calls import Presets
from voxlive.realtime.ws import Outbox
from voxlive.server.app import Daemon, running

openai = pytest.importorskip(
    "openai", reason="the openai SDK (pip install 'openai[realtime]', in the test extra)")
pytest.importorskip("websockets", reason="openai[realtime] brings websockets")

pytestmark = requires_espeak


def with_limits(config: VoxliveConfig, **limits: float) -> VoxliveConfig:
    server = config.server.model_copy(update={"limits": ServerLimits(**limits)})
    return config.model_copy(update={"server": server})


@pytest.fixture
async def limited_url(double_config: VoxliveConfig, double_models: Models
                      ) -> AsyncIterator[str]:
    config = with_limits(double_config, realtime_events_per_second=20)
    async with running(Daemon(config, "double", double_models, "127.0.0.1")) as url:
        yield url


def connect(url: str) -> Any:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-no-key-on-loopback",
                                websocket_base_url=f"{url.replace('http', 'ws', 1)}/v1")
    return client.realtime.connect(model="voxlive")


def audio_event(seconds: float, event_id: str) -> dict[str, Any]:
    chunk = base64.b64encode(pcm16(np.zeros(int(seconds * RATE), np.float32))).decode()
    return {"type": "input_audio_buffer.append", "event_id": event_id, "audio": chunk}


async def error_for(events: Events, event_id: str) -> dict[str, Any]:
    event = await events.wait(lambda e: e["type"] == "error"
                              and e["error"]["event_id"] == event_id, timeout=30)
    return event["error"]


async def still_alive(conn: Any, events: Events) -> None:
    start = len(events.items)
    await conn.session.update(session={"type": "realtime", "instructions": "Still here."})
    await events.wait("session.updated", timeout=30, start=start)


async def test_audio_faster_than_real_time_and_overlong_events_are_refused(
        limited_url: str) -> None:
    async with connect(limited_url) as conn:
        events = Events(conn)
        await events.wait("session.created")
        await conn.send(audio_event(31, "too_long"))  # over a turn's longest (30 s)
        assert (await error_for(events, "too_long"))["code"] == "audio_too_long"
        await conn.send(audio_event(25, "a_turn"))  # a recorded turn in one event: taken
        await conn.send(audio_event(25, "another"))  # at once again: 25 s ahead of time
        assert (await error_for(events, "another"))["code"] == "audio_rate_exceeded"
        await still_alive(conn, events)
        assert not [e for e in events.of("error") if e["error"]["event_id"] == "a_turn"]
        events.stop()


async def test_a_flood_of_events_is_cut_to_the_rate_and_the_session_lives(
        limited_url: str) -> None:
    async with connect(limited_url) as conn:
        events = Events(conn)
        await events.wait("session.created")
        for n in range(120):  # 20 a second allowed, bursts of 40
            await conn.send({"type": "input_audio_buffer.clear", "event_id": f"ev_{n}"})
        await events.wait(lambda e: e["type"] == "error"
                          and e["error"]["code"] == "rate_limit_exceeded", timeout=30)
        cleared = len(events.of("input_audio_buffer.cleared"))
        assert 30 <= cleared < 100, cleared
        await asyncio.sleep(0.5)  # the bucket refills (20 a second): the client may go on
        await still_alive(conn, events)
        events.stop()


async def test_the_conversation_and_the_settings_are_bounded(
        limited_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "MAX_ITEMS", 3)
    async with connect(limited_url) as conn:
        events = Events(conn)
        await events.wait("session.created")
        for n in range(4):
            await conn.send({"type": "conversation.item.create", "event_id": f"item_{n}",
                             "item": {"type": "message", "role": "user", "id": f"msg_{n}",
                                      "content": [{"type": "input_text", "text": f"Hi {n}."}]}})
        assert (await error_for(events, "item_3"))["code"] == "conversation_full"
        await conn.send({"type": "conversation.item.delete", "item_id": "msg_0"})
        await conn.send({"type": "conversation.item.create", "event_id": "item_again",
                         "item": {"type": "message", "role": "user", "id": "msg_4",
                                  "content": [{"type": "input_text", "text": "Again."}]}})
        await events.wait(lambda e: e["type"] == "conversation.item.added"
                          and e["item"]["id"] == "msg_4", timeout=30)
        await conn.send({"type": "session.update", "event_id": "long", "session": {
            "type": "realtime", "instructions": "x" * (guard.MAX_INSTRUCTIONS_CHARS + 1)}})
        assert (await error_for(events, "long"))["code"] == "string_above_max_length"
        await conn.send({"type": "response.create", "event_id": "long_reply", "response": {
            "instructions": "x" * (guard.MAX_INSTRUCTIONS_CHARS + 1)}})
        assert (await error_for(events, "long_reply"))["param"] == "response.instructions"
        await conn.send({"type": "response.create", "event_id": "bad_tools",
                         "response": {"tools": {"name": "not a list"}}})
        assert (await error_for(events, "bad_tools"))["param"] == "response.tools"
        assert not events.of("response.created")  # none of them started a response
        events.stop()


async def test_deeply_nested_json_is_an_error_not_the_end_of_the_session(
        limited_url: str) -> None:
    ws_url = f"{limited_url.replace('http', 'ws', 1)}/v1/realtime?model=voxlive"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "session.created"
        await ws.send_str('{"type": "session.update", "session": ' + "[" * 100_000
                          + "]" * 100_000 + "}")
        error = json.loads((await ws.receive(timeout=30)).data)
        assert error["type"] == "error" and error["error"]["code"] == "invalid_json"
        await ws.send_str(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "instructions": "Still here."}}))
        assert json.loads((await ws.receive(timeout=30)).data)["type"] == "session.updated"


async def test_an_idle_session_and_a_long_one_end_with_a_reason(
        double_config: VoxliveConfig, double_models: Models) -> None:
    config = with_limits(double_config, realtime_idle_timeout_s=1.5, max_call_s=3)
    async with running(Daemon(config, "double", double_models, "127.0.0.1")) as url, \
            aiohttp.ClientSession() as http:
        ws_url = f"{url.replace('http', 'ws', 1)}/v1/realtime?model=voxlive"
        async with http.ws_connect(ws_url) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "session.created"
            error = json.loads((await ws.receive(timeout=10)).data)  # sends nothing
            assert error["error"]["code"] == "session_expired"
            assert "no event from the client for 1.5 s" in error["error"]["message"]
            closing = await ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        async with http.ws_connect(ws_url) as ws:  # busy, but not for longer than 3 s
            assert json.loads((await ws.receive()).data)["type"] == "session.created"
            reason = None
            for _ in range(100):
                await ws.send_str(json.dumps({"type": "input_audio_buffer.clear"}))
                answer = await ws.receive(timeout=10)
                if answer.type != aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(answer.data)
                if event["type"] == "error":
                    reason = event["error"]
                    break
                await asyncio.sleep(0.1)
            assert reason is not None and reason["code"] == "session_expired"
            assert "the session ran 3 s" in reason["message"]


def test_server_events_for_a_client_that_never_reads_are_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voxlive.realtime.ws.MAX_QUEUED_BYTES", 1000)
    outbox = Outbox()
    for _ in range(50):
        outbox.put("x" * 100)
    assert outbox.queue.qsize() == 10 and outbox.bytes == 1000 and outbox.dropped == 40


def test_client_secret_sessions_expire_with_the_secret() -> None:
    now = [0.0]
    presets = Presets(clock=lambda: now[0])
    presets.put("vxt_a", {"instructions": "A"}, ttl_s=60)
    presets.put("vxt_b", {"instructions": "B"}, ttl_s=60)
    assert presets.take("vxt_a") == {"instructions": "A"} and presets.take("vxt_a") is None
    now[0] = 61
    assert presets.take("vxt_b") is None  # expired: its session is not applied
    presets.put("vxt_c", {}, ttl_s=60)
    presets.put("vxt_d", {"x": 1}, ttl_s=60)
    assert len(presets) == 2  # the expired ones are gone, used or not


async def test_realtime_offers_are_rate_limited_and_must_arrive_in_time(
        double_config: VoxliveConfig, double_models: Models) -> None:
    config = with_limits(double_config, offers_per_minute=2, body_timeout_s=0.5)
    async with running(Daemon(config, "double", double_models, "127.0.0.1")) as url:
        answer = await answer_to_unfinished_body(url, "/v1/realtime/calls",
                                                 "application/sdp", b"v=0\r\n")
        assert answer.startswith(b"HTTP/1.1 408"), answer
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/realtime/calls", data="not sdp",
                                 headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 400  # the second offer of the minute: refused as bad
            async with http.post(f"{url}/v1/realtime/calls", data="v=0\r\n",
                                 headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 429
                assert "too many offers" in (await r.json())["error"]["message"]


async def test_a_websocket_session_holds_a_call_slot(double_config: VoxliveConfig,
                                                     double_models: Models) -> None:
    """WebRTC calls and Realtime WebSockets share `server.max_calls`: a full daemon says so
    on /healthz (a balancer routes around it) and refuses the next of either kind."""
    server = double_config.server.model_copy(update={"max_calls": 1})
    config = double_config.model_copy(update={"server": server})
    async with running(Daemon(config, "double", double_models, "127.0.0.1")) as url, \
            aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{url.replace('http', 'ws', 1)}/v1/realtime") as ws:
            assert json.loads((await ws.receive()).data)["type"] == "session.created"
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 503 and (await r.json())["status"] == "full"
            pc, sdp = await raw_offer()  # a real offer: it would be a second call
            async with http.post(f"{url}/offer", json={"type": "offer", "sdp": sdp}) as r:
                assert r.status == 503 and "too many calls" in (await r.json())["error"]
            await pc.close()
            async with http.post(f"{url}/v1/realtime/calls", data="v=0\r\n",
                                 headers={"Content-Type": "application/sdp"}) as r:
                assert r.status == 503
        for _ in range(50):  # the socket's slot is free once it is gone
            async with http.get(f"{url}/healthz") as r:
                if r.status == 200:
                    break
            await asyncio.sleep(0.1)
        assert r.status == 200
