"""End to end in a real browser: headless Chromium calls the daemon from the web page.

Chromium's fake microphone plays a WAV of an espeak-ng question into the page's call;
the page records the audio it receives from the daemon, and the test checks the events,
the page's transcript and (with faster-whisper) that the reply audio says the reply text.
A second test talks over the answer (barge-in) and checks, in the audio the page received,
that the answer stops. The browser's requests and the call's media go to loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import ipaddress
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import av
import numpy as np
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from tests.conftest import SMALL_PROFILE, requires_espeak
from tests.words import MIN_WORD_SHARE, NEAR_MISS_RATIO, says, share_found, words
from voxlive.audio.resample import CALL_RATE, MODEL_RATE, resample_once
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.harness.speech import espeak, silence, write_wav
from voxlive.server.app import Daemon, running
from voxlive.turn.bookkeeping import CUT_MARK
from voxlive.turn.conversation import Conversation
from voxlive.turn.prompts import system_prompt_for

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
MIN_REPLY_RMS = 0.005

RECORD_MIME = "audio/webm;codecs=opus"

# Barge-in: the caller asks for a story and talks over the answer.
STORY = "Tell me a long story about a dragon who lives in a castle."
INTERRUPTION = "Stop. What is the capital of France?"
# From the end of the request to the start of "Stop.". With the models warm, the answer
# starts 1.5-3.5 s after the request (voice to voice on this 2-core machine) and lasts
# 10-25 s: the caller talks over it once it has played a second or two. When other work
# loads the machine (3.5-8 s voice to voice), the caller may talk before the answer has
# played MIN_PLAYED_S, or before it plays at all (then the daemon rightly takes both as one
# turn): that call ends at once (TOO_EARLY) and the caller tries again, waiting longer.
INTERRUPT_AFTER_S = (5.0, 10.0, 16.0)
MIN_PLAYED_S = 0.9
BARGE_IN_TIMEOUT_S = 60.0  # per call: from connected to the end of the answer after the cut
TOO_EARLY = "too early"
FRAME_S = 0.02  # the recording's loudness is measured in 20 ms frames
LOUD_RMS = 0.01  # a frame of the reply's speech
QUIET_RMS = 0.003  # a frame of silence (opus-coded digital silence decodes to about 0)
CUT_WITHIN_S = 0.6  # the reply is silent this long after the caller starts talking
LOUD_BEFORE_S = (2.0, 0.3)  # in the 2 s before the interruption, 0.3 s of the reply

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
  // The receiver's jitter buffer delay over time: [page time, total delay, samples out].
  const playout = [];
  const timer = setInterval(async () => {
    const stats = await window.voxlive.pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        playout.push([performance.now(), s.jitterBufferDelay, s.jitterBufferEmittedCount]);
      }
    });
  }, 200);
  window.__e2eRecording = { recorder, chunks, startedAt: performance.now(), playout, timer };
}
"""

# Notes, on the page's clock (performance.now()), when each event arrives and when the page
# gets its microphone (the fake microphone's file starts playing then). Run after the page
# loaded (app.js made window.voxlive), before Call is pressed.
CLOCK_JS = """
() => {
  const events = window.voxlive.events;
  const times = [];
  const push = events.push.bind(events);
  events.push = (...items) => {
    for (let i = 0; i < items.length; i += 1) times.push(performance.now());
    return push(...items);
  };
  window.__e2eClock = { eventTimes: times, micOpened: null };
  const media = navigator.mediaDevices;
  const getUserMedia = media.getUserMedia.bind(media);
  media.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    if (constraints && constraints.audio && window.__e2eClock.micOpened === null) {
      window.__e2eClock.micOpened = performance.now();
    }
    return stream;
  };
}
"""

# The clock notes, in seconds since the recording started.
CLOCK_READ_JS = """
() => {
  const t0 = window.__e2eRecording.startedAt;
  const { eventTimes, micOpened } = window.__e2eClock;
  return {
    event_times: eventTimes.map((t) => (t - t0) / 1000),
    mic_opened: micOpened === null ? null : (micOpened - t0) / 1000,
    playout: window.__e2eRecording.playout.map(([t, d, n]) => [(t - t0) / 1000, d, n]),
  };
}
"""

# Stops it and hands the whole recording back as base64.
STOP_RECORDING_JS = """
async () => {
  const { recorder, chunks, timer } = window.__e2eRecording;
  clearInterval(timer);
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
# With `afterInterruption`, the turn after an `interrupted` event must be over; a reply
# that plays to its end uninterrupted fails fast, and so does a caller who talks over a
# committed turn before its answer has played `minPlayedS` (TOO_EARLY: the scenario of
# the barge-in test did not happen).
TURN_OVER_JS = """
({ afterInterruption, minPlayedS }) => {
  const events = window.voxlive.events;
  const times = window.__e2eClock ? window.__e2eClock.eventTimes : [];
  const error = events.find((e) => e.type === 'error');
  if (error) return `error event: ${JSON.stringify(error)}`;
  const state = document.body.dataset.callState;
  if (state !== 'connected') return `call state became ${state}`;
  const first = (match, from) => events.findIndex((e, i) => i > from && match(e));
  const over = (from, turn) => {
    const final = first((e) => e.type === 'assistant_text' && e.final && e.turn > turn, from);
    return final >= 0 && first((e) => e.type === 'state' && e.state === 'listening', final) >= 0;
  };
  if (!afterInterruption) return over(-1, -1) ? 'done' : false;
  const committed = first((e) => e.type === 'turn_committed', -1);
  if (committed >= 0) {
    const spoke = first((e) => e.type === 'speech_started', committed);
    const played = first((e) => e.type === 'state' && e.state === 'speaking', committed);
    if (spoke >= 0 && (played < 0 || spoke < played)) {
      return 'too early: the caller talked before the answer played';
    }
    const after = spoke >= 0 && times.length > spoke ? (times[spoke] - times[played]) / 1000 : null;
    if (after !== null && after < minPlayedS) {
      return `too early: the caller talked ${after.toFixed(2)} s into the answer`;
    }
  }
  const cut = first((e) => e.type === 'interrupted', -1);
  if (cut >= 0) return over(cut, events[cut].turn) ? 'done' : false;
  return over(-1, -1) ? 'a reply was played to its end uninterrupted' : false;
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


def voiced_span(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Where a clip's voice starts and ends, in seconds: 10 ms windows above 2 % of its peak."""
    size = rate // 100
    count = len(samples) // size
    rms = np.sqrt(np.mean(np.square(samples[: count * size].reshape(count, size)), axis=1))
    voiced = np.nonzero(rms > 0.02 * rms.max())[0]
    return voiced[0] / 100, (voiced[-1] + 1) / 100


def write_barge_in_wav(path: Path, interrupt_after_s: float) -> float:
    """Silence, the request for a story, silence while the answer starts playing, the
    interruption `interrupt_after_s` after the request, then a long silence. Returns where
    the interruption's voice starts in the file, in seconds."""
    story = espeak(STORY, CALL_RATE)
    interruption = espeak(INTERRUPTION, CALL_RATE)
    _, story_end = voiced_span(story, CALL_RATE)
    start, _ = voiced_span(interruption, CALL_RATE)
    gap = interrupt_after_s - (len(story) / CALL_RATE - story_end) - start
    samples = np.concatenate(
        [
            silence(LEAD_SILENCE_S, CALL_RATE),
            story,
            silence(max(0.0, gap), CALL_RATE),
            interruption,
            silence(TAIL_SILENCE_S, CALL_RATE),
        ]
    )
    write_wav(str(path), samples, CALL_RATE)
    return LEAD_SILENCE_S + len(story) / CALL_RATE + max(0.0, gap) + start


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
    # When each event arrived, in seconds since the recording started (the page's clock).
    event_times: list[float] = field(default_factory=list)
    mic_opened: float | None = None  # when the page got the microphone, same clock
    playout: list[list[float]] = field(default_factory=list)  # jitter buffer, see START_...
    interrupted_entries: list[str] = field(default_factory=list)
    while_connected: Any = None  # what the `while_connected` callback returned
    verdict: str = "done"  # how the call ended: "done", or one of `call_from_browser`'s `allow`

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def first(self, match: Callable[[dict[str, Any]], bool], after: int = -1) -> int:
        """The index of the first event after index `after` that matches, or -1."""
        return next((i for i, e in enumerate(self.events) if i > after and match(e)), -1)


async def call_from_browser(
    base_url: str,
    fake_mic: Path,
    *,
    after_interruption: bool = False,
    timeout_s: float = TURN_TIMEOUT_S,
    while_connected: Callable[[], Awaitable[Any]] | None = None,
    allow: tuple[str, ...] = (),
) -> BrowserCall:
    """Open the page, press Call, let the fake microphone speak, record the answer, hang up.

    The call ends once a turn is over (TURN_OVER_JS; with `after_interruption`, the turn
    after an interruption); `while_connected` then runs before the page hangs up. A call
    that TURN_OVER_JS ends otherwise fails the test, unless its verdict starts with one of
    `allow`.
    """
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

    extra = None
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
            await page.evaluate(CLOCK_JS)
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
                    TURN_OVER_JS,
                    arg={"afterInterruption": after_interruption, "minPlayedS": MIN_PLAYED_S},
                    polling=100,
                    timeout=timeout_s * 1000,
                )
            except PlaywrightTimeout:
                pytest.fail(f"no complete turn in {timeout_s} s: {await page_state()}")
            verdict = await outcome.json_value()
            mark("turn_over")
            if verdict == "done" and while_connected is not None:
                extra = await while_connected()
            recording = base64.b64decode(await page.evaluate(STOP_RECORDING_JS))
            events = await page.evaluate("() => window.voxlive.events")
            clock = await page.evaluate(CLOCK_READ_JS)
            assert verdict == "done" or verdict.startswith(allow), (
                f"{verdict}; events: {events}; console: {console_errors}"
            )

            user_entries = await page.locator("#transcript .entry.user").all_inner_texts()
            assistant_entries = await page.locator("#transcript .entry.assistant").all_inner_texts()
            interrupted_entries = await page.locator(
                "#transcript .entry.assistant.interrupted"
            ).all_inner_texts()

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
        event_times=clock["event_times"],
        mic_opened=clock["mic_opened"],
        playout=clock["playout"],
        interrupted_entries=interrupted_entries,
        while_connected=extra,
        verdict=verdict,
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


def check_no_errors(result: BrowserCall) -> None:
    """No error event from the daemon, no uncaught error in the page."""
    assert not result.of("error"), f"error events: {result.of('error')}"
    page_errors = [e for e in result.console_errors if e.startswith("pageerror")]
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


def check_loopback_only(result: BrowserCall) -> None:
    """The browser stays on loopback: no request elsewhere, and the media goes to loopback."""
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


def check_call(result: BrowserCall, transcribe: Any) -> dict[str, Any]:
    """The assertions on one call; returns what the test reports."""
    events = result.events
    check_no_errors(result)

    user_texts = [e["text"] for e in result.of("user_transcript")]
    asked = [t for t in user_texts if says(t, QUESTION)]
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

    check_loopback_only(result)

    # The page really received the reply: audible, and it says the reply text.
    audio = result.reply_audio
    assert len(audio) > MODEL_RATE, f"only {len(audio) / MODEL_RATE:.2f} s recorded"
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    assert rms > MIN_REPLY_RMS, f"the received audio is silent (RMS {rms:.5f})"
    heard = transcribe(audio)
    exact = share_found(reply, heard)
    share = share_found(reply, heard, near_miss=NEAR_MISS_RATIO)
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
    embedded_server: str, tiny_en: Any, tmp_path: Path
) -> None:
    fake_mic = write_question_wav(tmp_path / "question.wav")
    result = await call_from_browser(embedded_server, fake_mic)
    await wait_for_no_calls(embedded_server)
    report = check_call(result, tiny_en.transcribe)  # Whisper judges the reply audio
    print(f"\nbrowser e2e: {report}")


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """The loudness of each 20 ms frame of 16 kHz audio."""
    size = int(MODEL_RATE * FRAME_S)
    count = len(audio) // size
    frames = audio[: count * size].reshape(count, size).astype(np.float64)
    return np.sqrt(np.mean(np.square(frames), axis=1))


def jitter_buffer_delay(result: BrowserCall) -> Callable[[float], float]:
    """The receiver's jitter buffer delay at a time (seconds, the recording's clock): the
    mean delay of the samples it let out between two samples of the stats."""
    rows = [r for r in result.playout if None not in r]
    if len(rows) < 2:
        return lambda t: 0.0
    table = np.asarray(rows, dtype=np.float64)
    ends = table[1:, 0]
    delays = np.diff(table[:, 1]) / np.maximum(1.0, np.diff(table[:, 2]))

    def delay(t: float) -> float:
        return float(delays[min(int(np.searchsorted(ends, t)), len(delays) - 1)])

    return delay


def timeline(result: BrowserCall) -> str:
    """The events with their arrival times, for failure messages."""
    lines = []
    for t, e in zip(result.event_times, result.events, strict=False):
        detail = {k: v for k, v in e.items() if k != "type"}
        lines.append(f"{t:7.2f} {e.get('type')} {detail}")
    return "\n".join(lines)


def check_barge_in(
    result: BrowserCall, said_in_file: float, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """The assertions on the barge-in call; returns what the test reports."""
    events, at = result.events, result.event_times
    check_no_errors(result)
    check_loopback_only(result)
    assert len(at) == len(events), f"{len(at)} event times for {len(events)} events"
    story_timeline = timeline(result)

    def is_state(state: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: e["type"] == "state" and e["state"] == state

    # The daemon says the story was cut, and what of it was heard: the words played.
    cut = result.first(lambda e: e["type"] == "interrupted")
    assert cut >= 0, f"no interrupted event:\n{story_timeline}"
    story_turn = events[cut]["turn"]
    transcripts = {e["turn"]: e["text"] for e in result.of("user_transcript")}
    request = transcripts.get(story_turn, "")
    assert {"story", "dragon", "castle"} & set(words(request)), (
        f"the interrupted turn {story_turn} does not answer the story request {request!r}"
    )
    told = [e for e in result.of("assistant_text") if e["turn"] == story_turn]
    assert told, f"no assistant_text for the story turn:\n{story_timeline}"
    story_text, story_final = told[-1]["text"], told[-1]["final"]
    heard = events[cut]["heard_text"]
    assert heard.strip(), f"nothing of the story was heard:\n{story_timeline}"
    assert words(story_text)[: len(words(heard))] == words(heard), (
        f"heard {heard!r} is not the start of the story {story_text!r}"
    )
    assert len(words(heard)) < len(words(story_text)) or not story_final, (
        f"the whole story {story_text!r} was heard: it was not cut"
    )
    # The page shows the heard words as the (interrupted) answer.
    assert [words(e) for e in result.interrupted_entries] == [words(heard)], (
        f"interrupted entries on the page: {result.interrupted_entries}; heard: {heard!r}"
    )

    barge = result.first(lambda e: e["type"] == "barge_in" and e["turn"] == story_turn)
    assert barge >= 0, f"no barge_in event for turn {story_turn}:\n{story_timeline}"
    onset_to_silence_ms = events[barge]["onset_to_silence_ms"]
    assert isinstance(onset_to_silence_ms, int | float) and onset_to_silence_ms > 0, (
        f"barge_in: {events[barge]}"
    )

    # The question asked over the story is answered.
    answer = result.first(
        lambda e: e["type"] == "assistant_text" and e["final"] and e["turn"] > story_turn, cut
    )
    assert answer >= 0, f"no answer after the interruption:\n{story_timeline}"
    answer_turn, answer_text = events[answer]["turn"], events[answer]["text"].strip()
    assert answer_text, f"the answer after the interruption is empty:\n{story_timeline}"
    question = transcripts.get(answer_turn, "")
    assert {"capital", "france"} & set(words(question)), (
        f"the turn after the interruption is not the question: {question!r}"
    )

    # In the audio the page received: the story was playing, went silent within
    # CUT_WITHIN_S of the caller starting to talk, and stayed silent until the answer.
    story_speaking = result.first(is_state("speaking"))
    answer_speaking = result.first(is_state("speaking"), cut)
    assert 0 <= story_speaking < barge, f"the story never played:\n{story_timeline}"
    assert answer_speaking > cut, f"the answer never played:\n{story_timeline}"
    rms = frame_rms(result.reply_audio)
    loud = rms > LOUD_RMS

    def frame(t: float) -> int:
        return int(np.clip(round(t / FRAME_S), 0, len(rms)))

    # The audio plays out behind the events by the receiver's jitter buffer delay, which
    # grows when the machine is busy (0.05-1.2 s seen), plus a fixed offset: measured where
    # the story's first frame is heard, against its `state: speaking`.
    delay = jitter_buffer_delay(result)
    start = frame(at[story_speaking] - 0.2)
    story_frames = np.nonzero(loud[start:])[0]
    assert len(story_frames), f"the story is not in the recording:\n{story_timeline}"
    first_heard = (start + int(story_frames[0])) * FRAME_S
    offset = first_heard - at[story_speaking] - delay(at[story_speaking])
    # (Early too: the event crosses the data channel, which a busy machine delays more than
    # the audio's RTP; -0.21 s seen on CI's 2 cores.)
    assert -0.4 < offset < 0.6, f"the story is heard {offset:.2f} s late, beyond the buffer"

    def heard_at(t: float) -> float:
        """Where audio that the daemon sent at page time `t` is in the recording."""
        return t + offset + delay(t)

    # When the daemon heard the caller start talking: by its own account, which must agree
    # with the fake microphone's file (that reaches the daemon 0.2-0.4 s after the page
    # gets the microphone and the file's offset).
    talked = at[barge] - onset_to_silence_ms / 1000
    said = None if result.mic_opened is None else result.mic_opened + said_in_file
    if said is not None:
        assert -0.3 < talked - said < 1.0, (
            f"the daemon heard the caller at {talked:.2f} s, the file spoke at {said:.2f} s"
        )
    onset = heard_at(talked)
    answer_start = heard_at(at[answer_speaking])
    quiet = rms[frame(onset + CUT_WITHIN_S) : frame(answer_start - 0.15)]
    assert len(quiet) * FRAME_S >= 1.5, (
        f"only {len(quiet) * FRAME_S:.2f} s between the cut and the answer:\n{story_timeline}"
    )
    still_loud = [
        round(onset + CUT_WITHIN_S + i * FRAME_S, 2) for i in np.nonzero(quiet >= QUIET_RMS)[0]
    ]
    assert not still_loud, (
        f"the story went on after the caller talked at {onset:.2f} s (recording time): "
        f"sound at {still_loud[:20]}, peak RMS {quiet.max():.4f}\n{story_timeline}"
    )
    span, needed = LOUD_BEFORE_S
    loud_before = float(loud[frame(onset - span) : frame(onset)].sum()) * FRAME_S
    assert loud_before >= needed, (
        f"only {loud_before:.2f} s of the story in the {span} s before the interruption "
        f"at {onset:.2f} s:\n{story_timeline}"
    )
    answer_heard = float(loud[frame(answer_start) :].sum()) * FRAME_S
    assert answer_heard >= 0.3, f"the answer is not in the recording ({answer_heard:.2f} s)"

    # The daemon's history keeps the heard words of the story, marked as cut, then the new
    # turn; nothing else (the system message explains the mark, turns hold only words).
    roles = [m["role"] for m in history]
    assert roles == ["user", "assistant", "user", "assistant"], f"history: {history}"
    assert request in history[0]["content"], f"history: {history}; request {request!r}"
    assert history[1]["content"] == f"{heard} {CUT_MARK}", f"history: {history}; heard {heard!r}"
    assert question in history[2]["content"], f"history: {history}; question {question!r}"
    assert history[3]["content"] == answer_text, f"history: {history}; answer {answer_text!r}"

    latency = {e["turn"]: e.get("voice_to_voice_ms") for e in result.of("turn_latency")}
    return {
        "heard": heard,
        "story": story_text,
        "answer": answer_text,
        "onset_to_silence_ms": onset_to_silence_ms,
        "story_voice_to_voice_ms": latency.get(story_turn),
        "story_started_s": round(at[story_speaking], 2),
        "talked_s": round(talked, 2),
        "talked_by_file_s": None if said is None else round(float(said), 2),
        "story_played_s": round(talked - at[story_speaking], 2),
        "quiet_s": round(len(quiet) * FRAME_S, 2),
        "offset_s": round(offset, 3),
        "buffer_s": [round(delay(at[story_speaking]), 3), round(delay(talked), 3)],
        "loud_before_s": round(loud_before, 2),
        "quiet_peak_rms": round(float(quiet.max()), 5),
        **result.timings,
    }


async def warm_up(models: Models, config: VoxliveConfig) -> None:
    """One short pass through STT, the LLM and TTS, so that the first answer of the call is
    not a cold start (llama.cpp keeps the system prompt's state for the next prompt)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(30):
        await loop.run_in_executor(None, models.stt.transcribe, np.zeros(MODEL_RATE, np.float32))
        system = system_prompt_for(config.assistant, models.llm)
        prompt = Conversation(system).messages_for("Hello.")
        stream = models.llm.stream(prompt)
        try:
            async for _ in stream:
                break
        finally:
            await stream.aclose()
        await loop.run_in_executor(None, lambda: list(models.tts.synthesize("Hello.")))


@pytest.mark.browser
@requires_espeak
@requires_chromium
async def test_talking_over_the_answer_in_the_browser(
    config: VoxliveConfig, embedded_models: Models, tmp_path: Path
) -> None:
    """Ask for a story and talk over the answer: in the audio the page receives, the story
    stops at once; the daemon says what of it was heard, answers the new question, and
    keeps only the heard words of the story in its history."""
    # The fixed silence rule ends the turns here: this test is about barge-in as heard, and
    # the end-of-turn detector (voice alone >= 0.75) may commit espeak's request at a pause
    # inside it, so the rest of the request counts as the caller talking too early.
    models = dataclasses.replace(embedded_models, turn_detector=None)
    daemon = Daemon(config, SMALL_PROFILE, models, host="127.0.0.1")

    async def history() -> list[dict[str, Any]]:
        calls = list(daemon.calls.values())
        assert len(calls) == 1, f"the daemon holds {len(calls)} calls"
        return [dict(message) for message in calls[0].session.conversation.turns]

    tries: list[str] = []
    await warm_up(embedded_models, config)
    async with running(daemon) as url:
        for interrupt_after_s in INTERRUPT_AFTER_S:
            fake_mic = tmp_path / f"barge_in_{interrupt_after_s:g}.wav"
            said_in_file = write_barge_in_wav(fake_mic, interrupt_after_s)
            result = await call_from_browser(
                url,
                fake_mic,
                after_interruption=True,
                timeout_s=BARGE_IN_TIMEOUT_S,
                while_connected=history,
                allow=(TOO_EARLY,),
            )
            await wait_for_no_calls(url)
            tries.append(f"{interrupt_after_s:g} s: {result.verdict}")
            if result.verdict == "done":
                break
        else:
            pytest.fail(f"the caller talked too early in every call (a busy machine?): {tries}")
    report = check_barge_in(result, said_in_file, result.while_connected)
    print(f"\nbrowser barge-in e2e: tries {tries}; {report}")
