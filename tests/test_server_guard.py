"""The daemon probed as an attacker or a clumsy client would: each defect of the issue
"Safe to expose and hard to knock over" gets its regression test, over real HTTP and
real WebRTC on loopback. STT (faster-whisper) and TTS (espeak-ng) are real; the LLM is
the vLLM test double (tests/doubles).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, rtcsctptransport

from tests.conftest import requires_espeak
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.config.limits import ServerLimits
from voxlive.harness.client import CallClient
from voxlive.server import app as app_module
from voxlive.server.app import Daemon, running
from voxlive.server.auth import AuthPolicy
from voxlive.server.ice import apply_host_policy, rtc_configuration

pytestmark = requires_espeak

KEY = "test-key-" + "k" * 24


def with_limits(config: VoxliveConfig, max_calls: int = 16, **limits: float) -> VoxliveConfig:
    server = config.server.model_copy(update={"limits": ServerLimits(**limits),
                                              "max_calls": max_calls})
    return config.model_copy(update={"server": server})


@contextlib.asynccontextmanager
async def daemon_at(config: VoxliveConfig, models: Models, auth: AuthPolicy | None = None
                    ) -> AsyncIterator[tuple[str, Daemon]]:
    daemon = Daemon(config, "double", models, host="127.0.0.1", auth=auth)
    async with running(daemon) as url:
        yield url, daemon


async def until(predicate, timeout: float = 20.0) -> bool:  # noqa: ANN001
    """Polls `predicate` (a bound for a busy machine, not a speed assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def raw_offer() -> tuple[RTCPeerConnection, str]:
    """A real aiortc offer whose peer will never answer the daemon (it never connects)."""
    apply_host_policy("127.0.0.1")
    pc = RTCPeerConnection(rtc_configuration([]))
    pc.createDataChannel("events")
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def post(url: str, data: str, **headers: str) -> tuple[int, dict]:
    headers.setdefault("Content-Type", "application/json")
    async with aiohttp.ClientSession() as http, http.post(
            f"{url}/offer", data=data, headers=headers) as r:
        return r.status, json.loads(await r.text())


# --- call slots ---------------------------------------------------------------------------


async def test_offers_that_never_connect_free_their_slot(double_config: VoxliveConfig,
                                                         double_models: Models) -> None:
    config = with_limits(double_config, max_calls=2, connect_timeout_s=1.0)
    async with daemon_at(config, double_models) as (url, daemon):
        peers = []
        for _ in range(2):
            pc, sdp = await raw_offer()
            peers.append(pc)
            status, _ = await post(url, json.dumps({"sdp": sdp, "type": "offer"}))
            assert status == 200
        pc, sdp = await raw_offer()
        peers.append(pc)
        status, body = await post(url, json.dumps({"sdp": sdp, "type": "offer"}))
        assert status == 503 and "too many calls" in body["error"]
        assert await until(lambda: not daemon.calls)  # freed at the connect deadline
        status, _ = await post(url, json.dumps({"sdp": sdp, "type": "offer"}))
        assert status == 200  # the daemon takes calls again
        for pc in peers:
            await pc.close()


async def test_healthz_is_not_ok_while_slots_are_stuck(double_config: VoxliveConfig,
                                                       double_models: Models,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = with_limits(double_config, connect_timeout_s=0.5)
    async with daemon_at(config, double_models) as (url, daemon):
        monkeypatch.setattr(app_module, "STUCK_GRACE_S", 0.5)

        async def broken_hang_up(call_id: str, reason: str | None = None) -> None:
            return None  # a watchdog that fails: the slot stays stuck

        monkeypatch.setattr(daemon, "hang_up", broken_hang_up)
        pc, sdp = await raw_offer()
        assert (await post(url, json.dumps({"sdp": sdp, "type": "offer"})))[0] == 200

        async def health() -> tuple[int, dict]:
            async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as r:
                return r.status, await r.json()

        status, body = await health()
        assert status == 200 and body["status"] == "ok"
        await asyncio.sleep(1.2)
        status, body = await health()
        assert status == 503 and body["status"] == "not ok"
        assert "stuck" in body["problems"][0]
        monkeypatch.undo()
        await daemon.hang_up(next(iter(daemon.calls)))
        await pc.close()


async def test_healthz_is_not_ok_when_the_event_loop_lags(double_config: VoxliveConfig,
                                                           double_models: Models) -> None:
    import time

    config = with_limits(double_config, max_loop_lag_s=0.3)
    async with daemon_at(config, double_models) as (url, _):
        await asyncio.sleep(0.3)  # the lag monitor is sampling
        time.sleep(1.0)  # a blocking call on the loop (what a bug in a handler would do)
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as r:
            body = await r.json()
        assert r.status == 503 and "event loop lagging" in body["problems"][0]


# --- cross-site, rebinding, bad bodies ------------------------------------------------------


async def test_cross_site_text_plain_post_starts_no_call(double_server) -> None:  # noqa: ANN001
    url, daemon = double_server
    pc, sdp = await raw_offer()
    body = json.dumps({"sdp": sdp, "type": "offer"})
    status, reply = await post(url, body, **{"Content-Type": "text/plain",
                                             "Origin": "https://evil.example"})
    assert status == 403 and "Origin" in reply["error"]
    status, reply = await post(url, body, **{"Content-Type": "text/plain"})
    assert status == 415  # a form or text/plain POST never starts a call
    assert daemon.calls == {}
    await pc.close()


async def test_a_rebound_host_reads_nothing(double_server) -> None:  # noqa: ANN001
    url, _ = double_server
    async with aiohttp.ClientSession() as http:
        for path in ("/config", "/metrics", "/healthz"):
            async with http.get(f"{url}{path}", headers={"Host": "attacker.example"}) as r:
                assert r.status == 403, path
                assert "Host" in (await r.json())["error"]


@pytest.mark.parametrize("body", [
    "[" * 50_000 + "]" * 50_000,
    json.dumps({"sdp": {"nested": [[[[{}]]]]}, "type": "offer"}),
    json.dumps({"sdp": "v=0\r\n" + "m=audio 9 RTP/AVP 0\r\n" * 3, "type": ["offer"]}),
])
async def test_bad_bodies_get_json_4xx_never_500(double_server, body: str) -> None:  # noqa: ANN001
    url, daemon = double_server
    status, reply = await post(url, body)
    assert 400 <= status < 500 and reply["error"]
    assert daemon.calls == {}


async def test_the_m_line_flood_is_refused(double_server) -> None:  # noqa: ANN001
    url, daemon = double_server
    pc, sdp = await raw_offer()
    head, _, rest = sdp.partition("m=audio")
    audio = "m=audio" + rest.split("m=application")[0]
    flood = head + audio * 100 + "m=application" + rest.split("m=application")[1]
    threads = threading.active_count()
    status, reply = await post(url, json.dumps({"sdp": flood, "type": "offer"}))
    assert status == 400 and "m-lines" in reply["error"]
    no_fingerprint = "\r\n".join(line for line in sdp.split("\r\n")
                                 if not line.startswith("a=fingerprint"))
    status, reply = await post(url, json.dumps({"sdp": no_fingerprint, "type": "offer"}))
    assert status == 400 and "fingerprint" in reply["error"]
    assert daemon.calls == {} and threading.active_count() <= threads + 2
    await pc.close()


async def test_one_address_posting_offers_in_a_loop_is_told_to_wait(
        double_config: VoxliveConfig, double_models: Models) -> None:
    config = with_limits(double_config, offers_per_minute=3)
    async with daemon_at(config, double_models) as (url, daemon):
        statuses = [(await post(url, "not json"))[0] for _ in range(5)]
        assert statuses == [400, 400, 400, 429, 429]
        status, body = await post(url, "not json")
        assert status == 429 and "too many offers" in body["error"]


# --- the slow-loris socket ---------------------------------------------------------------


async def test_a_slow_loris_socket_is_closed(double_config: VoxliveConfig,
                                             double_models: Models) -> None:
    config = with_limits(double_config, header_timeout_s=0.5)
    async with daemon_at(config, double_models) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")

        async def drip() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(200):
                    writer.write(b"a")
                    await asyncio.sleep(0.1)

        dripping = asyncio.ensure_future(drip())
        try:
            closed = await asyncio.wait_for(reader.read(), 15)
        except TimeoutError:
            closed = None
        dripping.cancel()
        writer.close()
        assert closed == b""  # the server hung up on it


# --- calls that go deaf or get killed ------------------------------------------------------


class MuteTrack(MediaStreamTrack):
    """A microphone that never delivers a frame (a frozen or vanished client)."""

    kind = "audio"

    async def recv(self):  # noqa: ANN201
        await asyncio.Event().wait()


async def test_a_silent_call_ends_with_a_reason(double_config: VoxliveConfig,
                                                double_models: Models) -> None:
    config = with_limits(double_config, no_audio_timeout_s=1.5)
    async with daemon_at(config, double_models) as (url, daemon):
        client = CallClient(url)
        client.pc.getTransceivers()[0].sender.replaceTrack(MuteTrack())
        try:
            await client.connect()
            ended = await client.wait_for(lambda e: e["type"] == "call_ended", timeout=20)
            assert "no audio for 1.5 s" in ended["reason"]
            assert any(e["type"] == "error" and e["stage"] == "call" for e in client.events)
            assert await until(lambda: not daemon.calls)
        finally:
            await client.close()


def send_raw_text(client: CallClient, data: bytes) -> None:
    """Send bytes as a *text* message (what aiortc's API will not do: invalid UTF-8)."""
    transport = client.pc.sctp
    transport._data_channel_queue.append((client.channel, rtcsctptransport.WEBRTC_STRING, data))
    asyncio.ensure_future(transport._data_channel_flush())


async def test_killer_messages_get_bounded_errors_and_the_call_lives(  # noqa: ANN001
        double_server) -> None:
    url, daemon = double_server
    client = CallClient(url)
    try:
        await client.connect()
        mark = len(client.events)
        client.send({"type": "t" * 50_000})  # used to echo 300 KB back
        client.channel.send("[" * 60_000)  # used to raise RecursionError
        send_raw_text(client, b"\xff\xfe\xfd not utf-8")  # used to kill the SCTP reader
        errors = []
        for _ in range(3):
            errors.append(await client.wait_for(lambda e: e["type"] == "error", timeout=10,
                                                start=mark))
            mark = client.events.index(errors[-1]) + 1
        assert all(len(json.dumps(e)) < 300 for e in errors)
        client.send({"type": "ping"})
        await client.wait_for(lambda e: e["type"] == "pong", timeout=10, start=mark)
        for _ in range(200):  # a flood: dropped past the rate, one error a second
            client.send({"type": "ping"})
        await asyncio.sleep(0.5)
        pongs = sum(1 for e in client.events[mark:] if e["type"] == "pong")
        assert pongs < 100
        assert len(daemon.calls) == 1
    finally:
        await client.close()


async def test_a_dead_audio_pump_ends_the_call_and_frees_the_slot(  # noqa: ANN001
        double_server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, daemon = double_server
    client = CallClient(url)
    try:
        await client.connect()
        [call] = daemon.calls.values()

        async def broken(samples, frames) -> None:  # noqa: ANN001
            raise ValueError("Frame does not match AudioResampler setup.")

        monkeypatch.setattr(call.session, "feed", broken)  # what the pump calls
        ended = await client.wait_for(lambda e: e["type"] == "call_ended", timeout=20)
        assert "audio input failed" in ended["reason"]
        assert await until(lambda: not daemon.calls)
    finally:
        await client.close()


# --- auth end to end ------------------------------------------------------------------------


async def test_keys_and_call_tokens_over_real_webrtc(double_config: VoxliveConfig,
                                                     double_models: Models) -> None:
    auth = AuthPolicy.from_settings("127.0.0.1", ["env:K"], environ={"K": KEY})
    async with daemon_at(double_config, double_models, auth) as (url, daemon):
        refused = CallClient(url)
        with pytest.raises(RuntimeError, match="401"):
            await refused.connect()
        await refused.close()
        async with aiohttp.ClientSession() as http, http.post(
                f"{url}/token", headers={"Authorization": f"Bearer {KEY}"}) as r:
            token = (await r.json())["token"]
        client = CallClient(url, headers={"Authorization": f"Bearer {token}"})
        again = CallClient(url, headers={"Authorization": f"Bearer {token}"})
        try:
            await client.connect()
            client.send({"type": "ping"})
            await client.wait_for(lambda e: e["type"] == "pong", timeout=10)
            with pytest.raises(RuntimeError, match="403"):
                await again.connect()  # single use
            assert len(daemon.calls) == 1
        finally:
            await client.close()
            await again.close()
