"""The Realtime API's WebRTC mode: POST /v1/realtime/calls, events on `oai-events`.

Two callers: aiortc (voxlive's own bench client in its Realtime mode), and a headless
Chromium running a page that does what OpenAI's browser examples do (a client secret,
the SDP offer POSTed as application/sdp, the `oai-events` data channel). Real models
behind: Silero, faster-whisper tiny.en, espeak-ng speech; the LLM is the vLLM TEST
DOUBLE (tests/doubles) so that the reply is known.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.conftest import requires_espeak
from tests.words import says, share_found
from voxlive.audio.resample import CALL_RATE
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak, silence, write_wav
from voxlive.server.app import Daemon, running

pytestmark = requires_espeak

QUESTION = "What is the capital of France?"
REPLY = "The capital of France is Paris. It is lovely in spring."  # the double's (conftest)
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def double_url(double_config: VoxliveConfig, double_models: Models
                     ) -> AsyncIterator[str]:
    async with running(Daemon(double_config, "double", double_models, "127.0.0.1")) as url:
        yield url


async def test_aiortc_caller_speaks_and_hears_the_answer(double_url: str,
                                                         double_models: Models) -> None:
    client = CallClient(double_url, realtime=True)
    await client.connect()
    try:
        assert client.location and client.location.startswith("/v1/realtime/calls/")
        client.send({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"transcription": {"model": "x"}}}}})
        await client.wait_for(lambda e: e["type"] == "session.updated", 10)
        client.mic.say(espeak(QUESTION, CALL_RATE))
        heard = await client.wait_for(
            lambda e: e["type"] == "conversation.item.input_audio_transcription.completed", 60)
        assert says(heard["transcript"], QUESTION), heard
        done = await client.wait_for(lambda e: e["type"] == "response.done", 60)
        assert done["response"]["status"] == "completed"
        said = done["response"]["output"][0]["content"][0]["transcript"]
        assert said == REPLY
        # The audio came on the Opus track (no audio deltas on the channel) and says it.
        assert not [e for e in client.events if e["type"] == "response.output_audio.delta"]
        received = client.received_audio()
        assert share_found(said, double_models.stt.transcribe(received)) >= 0.6
        kinds = [e["type"] for e in client.events]
        assert kinds.index("output_audio_buffer.started") < kinds.index(
            "output_audio_buffer.stopped") < kinds.index("response.done")
        # every event has an id of its own
        assert all(e.get("event_id") for e in client.events)
    finally:
        await client.close()


async def test_offer_errors_are_json(double_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for body, kind in ((b"hello", "application/sdp"), (b"{}", "application/json")):
            async with http.post(f"{double_url}/v1/realtime/calls", data=body,
                                 headers={"Content-Type": kind}) as response:
                assert response.status == 400
                assert (await response.json())["error"]["message"]
        async with http.post(f"{double_url}/v1/realtime/client_secrets",
                             json={"session": {"output_modalities": ["video"]}}) as response:
            assert response.status == 400
        async with http.post(f"{double_url}/v1/realtime/client_secrets",
                             json={"session": {"instructions": "Hi."}}) as response:
            secret = await response.json()
            assert secret["value"] and secret["session"]["instructions"] == "Hi."


PAGE = """<!doctype html><meta charset=utf-8><title>Realtime WebRTC</title><script>
// What OpenAI's browser example does, against voxlive: a client secret from the server,
// the SDP offer POSTed as application/sdp, events on the "oai-events" data channel.
window.events = []; window.loudest = 0;
async function start() {
  const secret = await (await fetch("/v1/realtime/client_secrets", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({session: {
      type: "realtime", instructions: "Answer briefly.",
      audio: {input: {transcription: {model: "whisper-1"}}}}})})).json();
  const pc = new RTCPeerConnection();
  pc.ontrack = (e) => {
    const audio = new Audio(); audio.srcObject = e.streams[0]; audio.play();
    const ctx = new AudioContext(); const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(e.streams[0]).connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    setInterval(() => { analyser.getFloatTimeDomainData(data);
      window.loudest = Math.max(window.loudest, ...data.map(Math.abs)); }, 20);
  };
  const mic = await navigator.mediaDevices.getUserMedia({audio: true});
  pc.addTrack(mic.getTracks()[0]);
  const dc = pc.createDataChannel("oai-events");
  dc.addEventListener("message", (e) => window.events.push(JSON.parse(e.data)));
  await pc.setLocalDescription(await pc.createOffer());
  const answer = await fetch("/v1/realtime/calls?model=voxlive", {method: "POST",
    body: pc.localDescription.sdp,
    headers: {Authorization: `Bearer ${secret.value}`, "Content-Type": "application/sdp"}});
  window.location_header = answer.headers.get("Location");
  await pc.setRemoteDescription({type: "answer", sdp: await answer.text()});
}
start().catch((e) => { window.failed = String(e); });
</script>"""


@pytest.mark.browser
@pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                    reason="the browser test drives Debian's chromium; .ci/run installs it")
async def test_browser_page_like_openais_example(double_url: str, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api",
                                         reason="playwright (test extra) drives Chromium")
    from tests.test_e2e_browser import chromium_args

    mic = tmp_path / "question.wav"
    samples = np.concatenate([silence(2.0, CALL_RATE), espeak(QUESTION, CALL_RATE),
                              silence(12.0, CALL_RATE)])
    write_wav(str(mic), samples, CALL_RATE)
    page_url = f"{double_url}/realtime-example.html"  # served by the test, same origin
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=chromium_args(mic), timeout=30_000)
        try:
            context = await browser.new_context()
            await context.route(page_url, lambda route: route.fulfill(
                body=PAGE, content_type="text/html"))
            page = await context.new_page()
            await page.goto(page_url)
            done = await _wait_for_event(page, "response.done", 90)
            events: list[dict[str, Any]] = json.loads(
                await page.evaluate("JSON.stringify(window.events)"))
            kinds = [e["type"] for e in events]
            assert kinds[0] == "session.created"
            assert events[0]["session"]["instructions"] == "Answer briefly."  # its secret's
            transcript = next(e for e in events if e["type"]
                              == "conversation.item.input_audio_transcription.completed")
            assert says(transcript["transcript"], QUESTION), transcript
            assert done["response"]["status"] == "completed"
            location = await page.evaluate("window.location_header")
            assert location.startswith("/v1/realtime/calls/")
            assert await page.evaluate("window.loudest") > 0.05  # the answer was heard
        finally:
            await browser.close()


async def _wait_for_event(page: Any, kind: str, timeout_s: float) -> dict[str, Any]:
    found = await page.wait_for_function(
        f"window.failed || window.events.find((e) => e.type === {kind!r})",
        timeout=timeout_s * 1000)
    value = await found.json_value()
    if isinstance(value, str):
        raise AssertionError(f"the page failed: {value}")
    return value


async def test_with_an_api_key_the_realtime_endpoints_need_it(
        double_config: VoxliveConfig, double_models: Models) -> None:
    from voxlive.server.auth import AuthPolicy

    key = "r" * 32
    daemon = Daemon(double_config, "double", double_models, "127.0.0.1",
                    auth=AuthPolicy(keys=[key], required=True))
    openai = pytest.importorskip("openai", reason="the openai SDK (test extra)")
    async with running(daemon) as url, aiohttp.ClientSession() as http:
        ws_url = url.replace("http", "ws", 1)
        for headers in ({}, {"Authorization": "Bearer " + "x" * 32}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{ws_url}/v1/realtime?model=m", headers=headers)
            assert refused.value.status in (401, 403)
        async with http.post(f"{url}/v1/realtime/client_secrets", json={}) as response:
            assert response.status == 401
        async with http.post(f"{url}/v1/realtime/client_secrets", json={},
                             headers={"Authorization": f"Bearer {key}"}) as response:
            secret = (await response.json())["value"]
        # the secret opens one session, once
        async with http.ws_connect(f"{ws_url}/v1/realtime?model=m",
                                   headers={"Authorization": f"Bearer {secret}"}) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{ws_url}/v1/realtime?model=m",
                                  headers={"Authorization": f"Bearer {secret}"})
        # and the SDK with the key gets in
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key)
        async with client.realtime.connect(model="voxlive") as conn:
            assert (await conn.recv()).type == "session.created"
