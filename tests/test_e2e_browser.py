"""End to end in a real browser: headless Chromium calls the daemon from the web page.

Chromium's fake microphone plays a WAV of an espeak-ng question into the page's call;
the page records the audio it receives from the daemon, and the test checks the events,
the page's transcript and (with faster-whisper) that the reply audio says the reply text.
The browser's requests and the call's media go to loopback addresses only.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import re
import shutil
import time
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import av
import numpy as np
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from tests.conftest import requires_espeak
from voxlive.audio.resample import CALL_RATE, MODEL_RATE, resample_once
from voxlive.bench.speech import espeak, silence, write_wav

QUESTION = "What is the capital of France?"
CHROMIUM = "/usr/bin/chromium"

requires_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="the browser test drives Debian's chromium; .ci/run installs it",
)

# The fake microphone starts at getUserMedia, and media flows some 0.3-1 s later (offer,
# ICE, DTLS): the question must not start at once.
LEAD_SILENCE_S = 2.0
# The file plays once (%noloop); were it looped, the silence would keep the question from
# coming round again while the reply plays.
TAIL_SILENCE_S = 12.0

CONNECT_TIMEOUT_S = 20.0
TURN_TIMEOUT_S = 45.0
MIN_WORD_SHARE = 0.6
NEAR_MISS_RATIO = 0.75  # 'paris'/'pairs' 0.8, 'france'/'francis' 0.77, 'the'/'she' 0.67
MIN_REPLY_RMS = 0.005

RECORD_MIME = "audio/webm;codecs=opus"

# Starts a MediaRecorder on the stream the page plays (window.voxlive.remoteStream).
START_RECORDING_JS = """
async (mime) => {
  const stream = window.voxlive.remoteStream;
  if (!stream) throw new Error('the page has no remote stream');
  if (!MediaRecorder.isTypeSupported(mime)) throw new Error(`MediaRecorder lacks ${mime}`);
  const recorder = new MediaRecorder(stream, { mimeType: mime, audioBitsPerSecond: 128000 });
  const chunks = [];
  recorder.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
  const started = new Promise((resolve) => { recorder.onstart = resolve; });
  recorder.start(250);
  await started;
  window.__e2eRecording = { recorder, chunks };
}
"""

# Stops it and hands the whole recording back as base64.
STOP_RECORDING_JS = """
async () => {
  const { recorder, chunks } = window.__e2eRecording;
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.stop();
  await stopped;
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
"""

# Truthy once the turn is over: the final reply text, then the state back to listening.
# Also truthy (with the reason) when the call reports an error or fails, to fail fast.
TURN_OVER_JS = """
() => {
  const events = window.voxlive.events;
  const error = events.find((e) => e.type === 'error');
  if (error) return `error event: ${JSON.stringify(error)}`;
  const state = document.body.dataset.callState;
  if (state !== 'connected') return `call state became ${state}`;
  const final = events.findIndex((e) => e.type === 'assistant_text' && e.final);
  if (final < 0) return false;
  const back = events.slice(final + 1).some((e) => e.type === 'state' && e.state === 'listening');
  return back ? 'done' : false;
}
"""

# Where the call's media goes: the selected candidate pair and every remote candidate.
MEDIA_PATH_JS = """
async () => {
  const stats = await window.voxlive.pc.getStats();
  const address = (c) => (c ? c.address || c.ip : null);
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
  });
  if (!pair) {
    stats.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  const remotes = [];
  stats.forEach((s) => { if (s.type === 'remote-candidate') remotes.push(address(s)); });
  return {
    local: pair ? address(stats.get(pair.localCandidateId)) : null,
    remote: pair ? address(stats.get(pair.remoteCandidateId)) : null,
    remote_candidates: remotes,
  };
}
"""


def chromium_args(fake_mic: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # No name resolves: nothing can be fetched by host name, only by loopback address.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        # %noloop: play the file once, then silence (Chromium's fake audio capture).
        f"--use-file-for-fake-audio-capture={fake_mic}%noloop",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]


def write_question_wav(path: Path) -> Path:
    """48 kHz mono 16-bit: silence, the spoken question, then a long silence."""
    samples = np.concatenate(
        [
            silence(LEAD_SILENCE_S, CALL_RATE),
            espeak(QUESTION, CALL_RATE),
            silence(TAIL_SILENCE_S, CALL_RATE),
        ]
    )
    write_wav(str(path), samples, CALL_RATE)
    return path


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def decode_recording(data: bytes) -> np.ndarray:
    """A webm/opus recording as 16 kHz mono float32."""
    pieces: list[np.ndarray] = []
    rate = CALL_RATE
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            samples = frame.to_ndarray().astype(np.float32)
            if frame.format.is_planar:
                mono = samples.mean(axis=0)
            else:  # interleaved: one row of channel-interleaved samples
                channels = len(frame.layout.channels)
                mono = samples.reshape(-1, channels).mean(axis=1)
            pieces.append(mono)
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return resample_once(np.concatenate(pieces), rate, MODEL_RATE)


def content_words(text: str) -> list[str]:
    """Lower-case words of 3+ letters, punctuation stripped."""
    cleaned = re.sub(r"[^a-z0-9\s]", "", text.lower().replace("-", " "))
    return [w for w in cleaned.split() if len(w) >= 3]


def word_share(expected: str, heard: str, near_miss: float = 1.0) -> float:
    """The share of `expected`'s content words that are in `heard`. With near_miss < 1, a
    word also counts when a heard word is that similar to it (difflib ratio): tiny.en hears
    "France is" as "Francis" and "Paris" as "pairs", and SmolLM2 often answers in 3-5 words."""
    wanted = content_words(expected)
    got = set(content_words(heard))

    def found(word: str) -> bool:
        return word in got or any(
            SequenceMatcher(None, word, other).ratio() >= near_miss for other in got
        )

    return sum(found(w) for w in wanted) / len(wanted) if wanted else 0.0


@dataclass
class BrowserCall:
    """What one call in the browser produced."""

    events: list[dict[str, Any]]
    user_entries: list[str]
    assistant_entries: list[str]
    reply_audio: np.ndarray  # what the page received, 16 kHz mono float32
    media_path: dict[str, Any]
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


async def call_from_browser(base_url: str, fake_mic: Path) -> BrowserCall:
    """Open the page, press Call, let the fake microphone ask, record the answer, hang up."""
    requests: list[str] = []
    blocked: list[str] = []
    console_errors: list[str] = []
    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 2)

    async def only_loopback(route: Any) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and not is_loopback_host(url.hostname):
            blocked.append(route.request.url)
            await route.abort("blockedbyclient")
        else:
            await route.continue_()

    def on_console(message: Any) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(fake_mic), timeout=30_000
        )
        mark("launched")
        try:
            context = await browser.new_context(service_workers="block")
            await context.route("**/*", only_loopback)
            page = await context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", on_console)
            page.on("pageerror", lambda exc: console_errors.append(f"pageerror: {exc}"))

            async def page_state() -> str:
                return await page.evaluate(
                    "() => JSON.stringify({state: document.body.dataset.callState,"
                    " error: document.getElementById('error').innerText,"
                    " events: window.voxlive.events})"
                )

            await page.goto(base_url + "/", wait_until="load", timeout=15_000)
            await page.click("#call", timeout=5_000)
            mark("clicked")
            try:
                await page.wait_for_selector(
                    "body[data-call-state=connected]",
                    state="attached",
                    timeout=CONNECT_TIMEOUT_S * 1000,
                )
            except PlaywrightTimeout:
                pytest.fail(f"the call did not connect: {await page_state()}; {console_errors}")
            mark("connected")
            await page.evaluate(START_RECORDING_JS, RECORD_MIME)
            media_path = await page.evaluate(MEDIA_PATH_JS)

            try:
                outcome = await page.wait_for_function(
                    TURN_OVER_JS, polling=100, timeout=TURN_TIMEOUT_S * 1000
                )
            except PlaywrightTimeout:
                pytest.fail(f"no complete turn in {TURN_TIMEOUT_S} s: {await page_state()}")
            verdict = await outcome.json_value()
            mark("turn_over")
            recording = base64.b64decode(await page.evaluate(STOP_RECORDING_JS))
            events = await page.evaluate("() => window.voxlive.events")
            assert verdict == "done", f"{verdict}; events: {events}; console: {console_errors}"

            user_entries = await page.locator("#transcript .entry.user").all_inner_texts()
            assistant_entries = await page.locator("#transcript .entry.assistant").all_inner_texts()

            await page.click("#hangup", timeout=5_000)
            await page.wait_for_selector(
                "body[data-call-state=closed]", state="attached", timeout=5_000
            )
            await context.close()
        finally:
            await browser.close()
    mark("closed")

    return BrowserCall(
        events=events,
        user_entries=user_entries,
        assistant_entries=assistant_entries,
        reply_audio=decode_recording(recording),
        media_path=media_path,
        requests=requests,
        blocked=blocked,
        console_errors=console_errors,
        timings=timings,
    )


async def wait_for_no_calls(base_url: str, timeout_s: float = 10.0) -> None:
    """The daemon noticed the hang-up: /healthz counts no live call."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{base_url}/healthz") as response:
                health = await response.json()
            if health["calls"] == 0:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the daemon still holds a call {timeout_s} s after hang-up: {health}")
            await asyncio.sleep(0.1)


def check_call(result: BrowserCall, transcribe: Any) -> dict[str, Any]:
    """The assertions on one call; returns what the test reports."""
    events = result.events
    assert not result.of("error"), f"error events: {result.of('error')}"
    page_errors = [e for e in result.console_errors if e.startswith("pageerror")]
    assert not page_errors, f"uncaught errors in the page: {page_errors}"

    user_texts = [e["text"] for e in result.of("user_transcript")]
    asked = [t for t in user_texts if "capital" in t.lower() and "france" in t.lower()]
    assert asked, f"no user_transcript with the question; got {user_texts}; events: {events}"

    finals = [e for e in result.of("assistant_text") if e.get("final")]
    assert finals, f"no final assistant_text; events: {events}"
    reply = finals[-1]["text"].strip()
    assert reply, f"the final assistant_text is empty; events: {events}"

    latencies = result.of("turn_latency")
    assert latencies, f"no turn_latency event; events: {events}"
    v2v = latencies[-1].get("voice_to_voice_ms")
    assert isinstance(v2v, int | float) and v2v > 0, f"turn_latency: {latencies[-1]}"

    # The page's transcript shows both sides of the turn.
    assert any(asked[-1] in entry for entry in result.user_entries), (
        f"user entries {result.user_entries} lack {asked[-1]!r}"
    )
    assert any(reply in entry for entry in result.assistant_entries), (
        f"assistant entries {result.assistant_entries} lack {reply!r}"
    )

    # The browser stays on loopback: no request elsewhere, and the media goes to loopback.
    assert not result.blocked, f"requests off loopback: {result.blocked}"
    assert all(
        is_loopback_host(urlsplit(u).hostname)
        for u in result.requests
        if urlsplit(u).scheme in ("http", "https")
    ), result.requests
    # Chromium may send from a socket bound to another address of this machine (the local
    # candidate); what matters is where packets go, and the daemon offers loopback only.
    path = result.media_path
    assert path["remote"] is not None, f"no selected ICE candidate pair: {path}"
    assert is_loopback_host(path["remote"]), path
    assert path["remote_candidates"], path
    assert all(is_loopback_host(a) for a in path["remote_candidates"]), path

    # The page really received the reply: audible, and it says the reply text.
    audio = result.reply_audio
    assert len(audio) > MODEL_RATE, f"only {len(audio) / MODEL_RATE:.2f} s recorded"
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    assert rms > MIN_REPLY_RMS, f"the received audio is silent (RMS {rms:.5f})"
    heard = transcribe(audio)
    exact = word_share(reply, heard)
    share = word_share(reply, heard, near_miss=NEAR_MISS_RATIO)
    assert share >= MIN_WORD_SHARE, (
        f"the received audio says {heard!r}, the reply text is {reply!r} "
        f"(word share {share:.2f}, exact {exact:.2f})"
    )
    return {
        "asked": asked[-1],
        "reply": reply,
        "heard": heard,
        "share": share,
        "exact": exact,
        "rms": rms,
        "voice_to_voice_ms": v2v,
        "seconds": len(audio) / MODEL_RATE,
        **result.timings,
    }


@pytest.mark.browser
@requires_espeak
@requires_chromium
async def test_a_spoken_question_is_answered_in_the_browser(
    embedded_server: str, embedded_models: Any, tmp_path: Path
) -> None:
    fake_mic = write_question_wav(tmp_path / "question.wav")
    result = await call_from_browser(embedded_server, fake_mic)
    await wait_for_no_calls(embedded_server)
    report = check_call(result, embedded_models.stt.transcribe)
    print(f"\nbrowser e2e: {report}")
