"""End to end in a real browser: the camera, and the kiosk page that redials by itself.

The camera: headless Chromium's fake camera plays a Y4M file of a photograph (scikit-image's
astronaut) into the page's call (`?camera=1`), and its fake microphone asks "What do you
see?". The daemon describes the camera at the start of the call and again for the question
(the OpenCV backend: the astronaut's face, found by the Haar detector after the browser's
VP8 encode and aiortc's decode), the page shows what it saw, and the description is in the
LLM's prompt for that turn (the LLM is the vLLM test double, which records its requests);
a later question that is not about the camera neither looks nor carries the description.
This is tests/test_vision_call.py with the browser as the caller.

The kiosk: `?kiosk=1` calls on load without a click. The daemon is stopped in the middle
of the call and a new one started on the same port: the page notices, keeps redialling,
reconnects by itself to the new daemon and a new turn is answered there. Chromium's fake
microphone restarts its file at every getUserMedia (each redial opens the microphone
again), so every call hears the question from the start.

The browser's requests and the calls' media stay on loopback.
"""

from __future__ import annotations

import asyncio
import socket
import time
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from playwright.async_api import async_playwright

from tests.conftest import config_with_profile, requires_espeak
from tests.test_e2e_browser import (
    CHROMIUM,
    MEDIA_PATH_JS,
    BrowserCall,
    check_loopback_only,
    check_no_errors,
    chromium_args,
    is_loopback_host,
    requires_chromium,
    wait_for_no_calls,
)
from tests.words import words
from voxlive.audio.resample import CALL_RATE
from voxlive.backends.loader import Models, load_models
from voxlive.config import VoxliveConfig
from voxlive.harness.speech import espeak, silence, write_wav
from voxlive.server.app import Daemon, running

cv2 = pytest.importorskip("cv2", reason="the vision extra installs opencv-python-headless")
skimage_data = pytest.importorskip("skimage.data", reason="the test extra installs scikit-image")

PROFILE = "browser-vision"

SEE_QUESTION = "What do you see?"
LATER_QUESTION = "What is the capital of France?"

CAMERA_SIZE = (640, 480)  # what the page asks for (app.js CAMERA_CONSTRAINTS)
CAMERA_FPS = 30
CAMERA_FRAMES = 10  # identical frames; Chromium loops the file

# The microphone file, in seconds: the question after the call is up (ICE, DTLS), then a
# pause long enough for the answer (espeak-ng says the double's two sentences in ~4 s) to
# play before the camera test's second question.
LEAD_SILENCE_S = 2.0
BETWEEN_QUESTIONS_S = 10.0
TAIL_SILENCE_S = 12.0

LAUNCH_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 20.0
FIRST_LOOK_TIMEOUT_S = 20.0  # from connected: the first frame, then one OpenCV pass
TURN_TIMEOUT_S = 45.0  # one spoken turn, from when it can start to its final reply text
LEAVE_TIMEOUT_S = 20.0  # the page notices the stopped daemon (data channel or ICE)
REDIAL_TIMEOUT_S = 20.0  # a failed redial while the daemon is down (every 3 s, ICE cap 3 s)
RECONNECT_TIMEOUT_S = 30.0  # from the new daemon's start to the page connected again
KIOSK_RETRY_S = 3.0  # app.js KIOSK_RETRY_MS
POLL_S = 0.2

# Records every value of body[data-call-state], and when the page opens the microphone,
# with the page's clock (seconds). An init script: it runs before app.js, so the kiosk
# page's call on load is recorded too.
CALL_STATES_JS = """
(() => {
  const states = [];
  const mics = [];
  window.__e2eStates = states;
  window.__e2eMics = mics;
  const media = navigator.mediaDevices;
  const getUserMedia = media.getUserMedia.bind(media);
  media.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    if (constraints && constraints.audio) mics.push(performance.now() / 1000);
    return stream;
  };
  const note = (state) => {
    if (state !== undefined && (!states.length || states[states.length - 1][1] !== state)) {
      states.push([performance.now() / 1000, state]);
    }
  };
  const watch = () => {
    note(document.body.dataset.callState);
    new MutationObserver((records) => {
      records.forEach((r) => note(r.oldValue === null ? undefined : r.oldValue));
      note(document.body.dataset.callState);
    }).observe(document.body, {
      attributes: true, attributeOldValue: true, attributeFilter: ['data-call-state'],
    });
  };
  if (document.body) watch();
  else document.addEventListener('readystatechange', watch, { once: true });
})();
"""

SNAPSHOT_JS = """
() => ({
  now: performance.now() / 1000,
  state: document.body.dataset.callState,
  states: window.__e2eStates || [],
  mics: window.__e2eMics || [],
  error: document.getElementById('error').innerText,
  info: document.getElementById('call-info').innerText,
  events: window.voxlive ? window.voxlive.events : [],
})
"""

# What the page shows of the camera: each `.entry.vision` with its picture and caption.
VISION_ENTRIES_JS = """
() => Array.from(document.querySelectorAll('#transcript .entry.vision')).map((entry) => {
  const img = entry.querySelector('img');
  return {
    turn: entry.dataset.turn,
    caption: entry.innerText.trim(),
    src: img ? img.getAttribute('src') : null,
    loaded: img ? img.complete && img.naturalWidth > 0 : false,
    size: img ? [img.naturalWidth, img.naturalHeight] : null,
  };
})
"""

# The kinds of the tracks the page sends, live ones only.
SENT_TRACKS_JS = """
() => window.voxlive.pc.getSenders()
  .filter((s) => s.track && s.track.readyState === 'live').map((s) => s.track.kind)
"""


# The codec the page's camera is sent with, once frames went out (null before).
VIDEO_CODEC_JS = """
async () => {
  const stats = await window.voxlive.pc.getStats();
  let codec = null;
  stats.forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video' && s.codecId && s.framesEncoded > 0) {
      codec = stats.get(s.codecId).mimeType;
    }
  });
  return codec;
}
"""


# --- set-up ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def vision_stack(config: VoxliveConfig, vllm_double: Any
                       ) -> AsyncIterator[tuple[VoxliveConfig, Models]]:
    """Real STT, VAD, espeak-ng TTS and OpenCV vision; the LLM is the vLLM double."""
    from tests.doubles.vllm_double import DEFAULT_MODEL

    vision_config = config_with_profile(
        config,
        PROFILE,
        {
            "stt": {"backend": "faster-whisper"},
            "llm": {"backend": "openai", "base_url": vllm_double.base_url, "model": DEFAULT_MODEL},
            "tts": {"backend": "espeak-ng"},
            "vision": {"backend": "opencv"},
        },
    )
    models = load_models(vision_config.profile(PROFILE), progress=False)
    yield vision_config, models
    await models.aclose()  # its LLM client's HTTP session


def astronaut() -> np.ndarray:
    """scikit-image's astronaut photograph (512x512 RGB) at the camera's 640x480."""
    return cv2.resize(skimage_data.astronaut(), CAMERA_SIZE, interpolation=cv2.INTER_AREA)


def write_y4m(path: Path, rgb: np.ndarray, frames: int = CAMERA_FRAMES) -> Path:
    """A YUV4MPEG2 file (4:2:0, the planes of I420) of `frames` copies of one RGB picture:
    what Chromium's --use-file-for-fake-video-capture plays, looped."""
    height, width = rgb.shape[:2]
    i420 = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
    assert i420.nbytes == width * height * 3 // 2
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{CAMERA_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(i420.tobytes())
    return path


def write_mic_wav(path: Path, *questions: str, tail_s: float = TAIL_SILENCE_S) -> Path:
    """48 kHz mono: the lead silence, then the questions BETWEEN_QUESTIONS_S apart, then
    `tail_s` of silence (Chromium plays the file once, %noloop, then silence)."""
    pieces = [silence(LEAD_SILENCE_S, CALL_RATE)]
    for i, question in enumerate(questions):
        if i:
            pieces.append(silence(BETWEEN_QUESTIONS_S, CALL_RATE))
        pieces.append(espeak(question, CALL_RATE))
    pieces.append(silence(tail_s, CALL_RATE))
    write_wav(str(path), np.concatenate(pieces), CALL_RATE)
    return path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def free_port() -> int:
    """A port on 127.0.0.1 that the OS just handed out (free now; the daemons reuse it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the browser -------------------------------------------------------------------------


@dataclass
class Tab:
    """One page in headless Chromium, with what it requested and logged."""

    page: Any
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def snapshot(self) -> dict[str, Any]:
        return await self.page.evaluate(SNAPSHOT_JS)

    async def events(self) -> list[dict[str, Any]]:
        return await self.page.evaluate("() => window.voxlive.events")

    async def wait(
        self,
        what: str,
        found: Callable[[dict[str, Any]], Any],
        timeout_s: float,
        *,
        connected: bool = True,
    ) -> Any:
        """Polls the page until `found(snapshot)` is truthy and returns that. Fails at once
        on an error event or an uncaught page error, and (with `connected`) when the call
        leaves the connected state; fails after `timeout_s`, showing the page's state."""
        deadline = time.monotonic() + timeout_s
        while True:
            snap = await self.snapshot()
            errors = [e for e in snap["events"] if e.get("type") == "error"]
            page_errors = [e for e in self.console_errors if e.startswith("pageerror")]
            if errors or page_errors:
                pytest.fail(f"{what}: error events {errors}, page errors {page_errors}")
            result = found(snap)
            if result:
                return result
            if connected and snap["state"] != "connected":
                pytest.fail(f"{what}: the call state became {snap['state']}\n{describe(snap)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout_s:g} s\n{describe(snap)}")
            await asyncio.sleep(POLL_S)

    def result(self, events: list[dict[str, Any]], media_path: dict[str, Any]) -> BrowserCall:
        """In the shape of test_e2e_browser's calls, for its loopback and error checks."""
        return BrowserCall(
            events=events,
            user_entries=[],
            assistant_entries=[],
            reply_audio=np.zeros(0, np.float32),
            media_path=media_path,
            requests=self.requests,
            blocked=self.blocked,
            console_errors=self.console_errors,
        )


@asynccontextmanager
async def browser_tab(fake_mic: Path, extra_args: tuple[str, ...] = ()) -> AsyncIterator[Tab]:
    """Headless Chromium with the fake microphone (and `extra_args`), one page open, whose
    requests off loopback are blocked and noted, and whose call states are recorded."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*chromium_args(fake_mic), *extra_args],
            timeout=LAUNCH_TIMEOUT_S * 1000,
        )
        try:
            context = await browser.new_context(service_workers="block")
            tab = Tab(page=None)

            async def only_loopback(route: Any) -> None:
                url = urlsplit(route.request.url)
                if url.scheme in ("http", "https", "ws", "wss") and not is_loopback_host(
                    url.hostname
                ):
                    tab.blocked.append(route.request.url)
                    await route.abort("blockedbyclient")
                else:
                    await route.continue_()

            def on_console(message: Any) -> None:
                if message.type == "error":
                    tab.console_errors.append(message.text)

            await context.route("**/*", only_loopback)
            await context.add_init_script(CALL_STATES_JS)
            page = await context.new_page()
            tab.page = page
            page.on("request", lambda request: tab.requests.append(request.url))
            page.on("console", on_console)
            page.on("pageerror", lambda exc: tab.console_errors.append(f"pageerror: {exc}"))
            yield tab
            await context.close()
        finally:
            await browser.close()


def describe(snap: dict[str, Any]) -> str:
    """The page's state and events, for failure messages (thumbnails shortened)."""
    lines = [
        f"state {snap['state']!r}, states {[s for _, s in snap['states']]}",
        f"error {snap['error']!r}, info {snap['info']!r}",
    ]
    for e in snap["events"]:
        shown = {k: (v[:40] + "..." if k == "thumbnail" and v else v) for k, v in e.items()}
        lines.append(f"  {shown}")
    return "\n".join(lines)


def of(events: list[dict[str, Any]], kind: str, after: int = -1) -> list[dict[str, Any]]:
    return [e for i, e in enumerate(events) if i > after and e.get("type") == kind]


def answered_turn(
    events: list[dict[str, Any]], asks: Callable[[str], bool], after: int = -1
) -> dict[str, Any] | None:
    """The first turn, among the events after index `after`, whose transcript `asks` and
    whose final reply text has come: {"turn", "text", "reply"}; None if there is none yet."""
    for said in of(events, "user_transcript", after):
        if not asks(said["text"]):
            continue
        replies = [
            e
            for e in of(events, "assistant_text", after)
            if e["turn"] == said["turn"] and e["final"]
        ]
        if replies:
            return {"turn": said["turn"], "text": said["text"], "reply": replies[-1]["text"]}
    return None


def asks_what_it_sees(text: str) -> bool:
    return "see" in words(text)


def asks_the_capital(text: str) -> bool:
    return bool({"capital", "france"} & set(words(text)))


def prompts_for(requests: list[dict[str, Any]], user_text: str) -> list[list[dict[str, Any]]]:
    """The prompts (message lists) that the LLM got to answer `user_text`."""
    return [
        r["messages"]
        for r in requests
        if r["messages"] and r["messages"][-1] == {"role": "user", "content": user_text}
    ]


def camera_notes(prompt: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in prompt if m["role"] == "system" and "camera" in m["content"]]


# --- the camera --------------------------------------------------------------------------


@pytest.mark.browser
@requires_espeak
@requires_chromium
async def test_the_camera_is_seen_in_the_browser(
    vision_stack: tuple[VoxliveConfig, Models], vllm_double: Any, tmp_path: Path
) -> None:
    config, models = vision_stack
    started = time.monotonic()
    timings: dict[str, float] = {}

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 2)

    picture = astronaut()
    faces_in_file = models.vision.describe(picture).details["faces"]
    assert len(faces_in_file) == 1, f"the photograph itself: {faces_in_file}"
    camera = write_y4m(tmp_path / "astronaut.y4m", picture)
    fake_mic = write_mic_wav(tmp_path / "questions.wav", SEE_QUESTION, LATER_QUESTION)
    requests_before = len(vllm_double.requests)

    daemon = Daemon(config, PROFILE, models, host="127.0.0.1")
    camera_args = (f"--use-file-for-fake-video-capture={camera}",)
    async with running(daemon) as url, browser_tab(fake_mic, camera_args) as tab:
        page = tab.page
        await page.goto(url + "/?camera=1", wait_until="load", timeout=15_000)
        assert await page.is_checked("#camera"), "?camera=1 did not tick the camera box"
        await page.click("#call", timeout=5_000)
        await tab.wait(
            "the call connecting",
            lambda s: s["state"] == "connected",
            CONNECT_TIMEOUT_S,
            connected=False,
        )
        mark("connected")
        sent = await page.evaluate(SENT_TRACKS_JS)
        assert sorted(sent) == ["audio", "video"], f"the page sends {sent}"
        media_path = await page.evaluate(MEDIA_PATH_JS)

        # The daemon looks once the first frame is in: the astronaut's face.
        first = await tab.wait(
            "a look at the start of the call",
            lambda s: next(iter(of(s["events"], "vision")), None),
            FIRST_LOOK_TIMEOUT_S,
        )
        mark("first_look")
        codec = await page.evaluate(VIDEO_CODEC_JS)
        assert codec in ("video/VP8", "video/H264"), f"the camera is sent as {codec}"
        assert first["reason"] == "call_start" and not first["cached"], first
        assert first["backend"].startswith("opencv"), first
        assert "one face" in first["caption"], first["caption"]
        assert ["1 face", 1.0] in first["labels"], first["labels"]
        assert first["thumbnail"].startswith("data:image/jpeg;base64,"), first["thumbnail"][:40]

        # "What do you see?": the daemon looks again (the same scene: the first description
        # is reused) and answers.
        seen = await tab.wait(
            "the answer to 'what do you see?'",
            lambda s: answered_turn(s["events"], asks_what_it_sees),
            TURN_TIMEOUT_S,
        )
        mark("seen_answered")
        # The daemon holds the frames the browser sent: the whole picture, decoded.
        calls = list(daemon.calls.values())
        assert len(calls) == 1, f"the daemon holds {len(calls)} calls"
        frames = calls[0].session.camera.frames
        frame_shape = calls[0].session.camera.rgb().shape

        # The question that is not about the camera.
        later = await tab.wait(
            "the answer to the later question",
            lambda s: answered_turn(s["events"], asks_the_capital),
            TURN_TIMEOUT_S,
        )
        mark("later_answered")
        events = await tab.events()
        entries = await page.evaluate(VISION_ENTRIES_JS)

        await page.click("#hangup", timeout=5_000)
        await page.wait_for_selector(
            "body[data-call-state=closed]", state="attached", timeout=5_000
        )
        await wait_for_no_calls(url)
        mark("closed")

    result = tab.result(events, media_path)
    check_no_errors(result)
    check_loopback_only(result)

    assert frames > 1, f"the daemon got {frames} camera frames"
    assert frame_shape[2] == 3 and frame_shape[1] * 3 == frame_shape[0] * 4, frame_shape

    # One look at the start, then looks only for the question (a turn that the daemon
    # started early and then reopened may have looked too: the same, cached, picture).
    looks = of(events, "vision")
    assert looks[0]["reason"] == "call_start", looks
    assert all(e["reason"] == "intent" for e in looks[1:]), looks
    assert all(e["turn"] <= seen["turn"] for e in looks), (looks, seen)
    looked = [e for e in looks if e["turn"] == seen["turn"]]
    assert len(looked) == 1, f"looks {looks} for the camera turn {seen}"
    looked = looked[0]
    assert looked["cached"], looked  # the same picture: described once
    assert looked["caption"] == first["caption"], (looked, first)
    assert later["turn"] > seen["turn"], (seen, later)

    latencies = {e["turn"]: e for e in of(events, "turn_latency")}
    assert seen["turn"] in latencies, f"no turn_latency for the camera turn: {latencies}"
    assert latencies[seen["turn"]].get("vision_ms") is not None, latencies[seen["turn"]]
    assert latencies[seen["turn"]]["vision_ms"] >= 0, latencies[seen["turn"]]

    # The page shows both looks: the picture (it loads) and the caption.
    assert len(entries) == len(looks), entries
    for entry, look in zip(entries, looks, strict=True):
        assert entry["src"] == look["thumbnail"], (entry["src"][:40], look["thumbnail"][:40])
        assert entry["loaded"], entry
        assert entry["caption"] == look["caption"], (entry, look["caption"])

    # The description reached the LLM's prompt for the camera turn, and only that turn's.
    requests = vllm_double.requests[requests_before:]
    prompts = prompts_for(requests, seen["text"])
    assert prompts, f"no LLM request for {seen['text']!r}: {[r['messages'] for r in requests]}"
    notes = camera_notes(prompts[-1])
    assert len(notes) == 1 and looked["caption"] in notes[0], prompts[-1]
    assert not of([e for e in events if e.get("turn") == later["turn"]], "vision"), events
    prompts = prompts_for(requests, later["text"])
    assert prompts, f"no LLM request for {later['text']!r}: {[r['messages'] for r in requests]}"
    assert not camera_notes(prompts[-1]), prompts[-1]

    print(
        f"\nbrowser camera e2e: caption {first['caption']!r}; {codec} frames {frames} "
        f"{frame_shape}; "
        f"asked {seen['text']!r} (turn {seen['turn']}), then {later['text']!r} "
        f"(turn {later['turn']}); vision_ms {latencies[seen['turn']]['vision_ms']}; {timings}"
    )


# --- the kiosk ---------------------------------------------------------------------------


def ready_events(events: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, e) for i, e in enumerate(events) if e.get("type") == "ready"]


@pytest.mark.browser
@requires_espeak
@requires_chromium
async def test_the_kiosk_page_reconnects_after_the_daemon_restarts(
    vision_stack: tuple[VoxliveConfig, Models], vllm_double: Any, tmp_path: Path
) -> None:
    config, models = vision_stack
    started = time.monotonic()
    timings: dict[str, float] = {}

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 2)

    # A short file: its one play is over long before the reconnect.
    fake_mic = write_mic_wav(tmp_path / "question.wav", LATER_QUESTION, tail_s=1.0)
    port = free_port()
    requests_before = len(vllm_double.requests)

    async with browser_tab(fake_mic) as tab:
        page = tab.page
        first_daemon = Daemon(config, PROFILE, models, host="127.0.0.1")
        async with running(first_daemon, port=port) as url:
            assert urlsplit(url).port == port, url
            # No click: the kiosk page calls on load.
            await page.goto(url + "/?kiosk=1", wait_until="load", timeout=15_000)
            await tab.wait(
                "the kiosk page connecting by itself",
                lambda s: s["state"] == "connected",
                CONNECT_TIMEOUT_S,
                connected=False,
            )
            mark("connected")
            first_path = await page.evaluate(MEDIA_PATH_JS)
            first = await tab.wait(
                "the first turn",
                lambda s: answered_turn(s["events"], asks_the_capital),
                TURN_TIMEOUT_S,
            )
            mark("first_turn")
            first_ready = ready_events(await tab.events())
            assert len(first_ready) == 1, first_ready
            first_call = first_ready[0][1]["call_id"]
            assert list(first_daemon.calls) == [first_call], first_daemon.calls
        # The daemon is gone, mid-call: the page notices ...
        assert not first_daemon.calls, first_daemon.calls
        left = await tab.wait(
            "the page noticing the daemon stopped",
            lambda s: s if s["state"] != "connected" else None,
            LEAVE_TIMEOUT_S,
            connected=False,
        )
        mark("left")
        # ... and keeps redialling: one redial fails, the daemon being down.
        states_before = len(left["states"])
        failed = await tab.wait(
            "a failed redial while the daemon is down",
            lambda s: s if "failed" in [x for _, x in s["states"][states_before:]] else None,
            REDIAL_TIMEOUT_S,
            connected=False,
        )
        mark("redial_failed")
        assert "could not reach the voxlive server" in failed["error"].lower(), failed["error"]

        second_daemon = Daemon(config, PROFILE, models, host="127.0.0.1")
        async with running(second_daemon, port=port) as second_url:
            assert second_url == url, (second_url, url)
            reconnected = await tab.wait(
                "the page reconnecting by itself",
                lambda s: (
                    s if s["state"] == "connected" and len(ready_events(s["events"])) > 1 else None
                ),
                RECONNECT_TIMEOUT_S,
                connected=False,
            )
            mark("reconnected")
            readies = ready_events(reconnected["events"])
            assert len(readies) == 2, readies
            mark_index, second_ready = readies[1]
            second_call = second_ready["call_id"]
            assert second_call != first_call, readies
            assert list(second_daemon.calls) == [second_call], second_daemon.calls
            assert second_call in reconnected["info"], reconnected["info"]
            second_path = await page.evaluate(MEDIA_PATH_JS)
            second = await tab.wait(
                "a turn after the reconnect",
                lambda s: answered_turn(s["events"], asks_the_capital, after=mark_index),
                TURN_TIMEOUT_S,
            )
            mark("second_turn")
            events = await tab.events()
            user_entries = await page.locator("#transcript .entry.user").all_inner_texts()
            assistant_entries = await page.locator("#transcript .entry.assistant").all_inner_texts()

            # Hanging up ends kiosk mode's redialling.
            await page.click("#hangup", timeout=5_000)
            await wait_for_no_calls(second_url)
            await asyncio.sleep(KIOSK_RETRY_S + 1.0)
            hung_up = await tab.snapshot()
            assert hung_up["state"] == "closed", describe(hung_up)
            assert not second_daemon.calls, second_daemon.calls
            mark("hung_up")

    for path in (first_path, second_path):
        result = tab.result(events, path)
        check_no_errors(result)
        check_loopback_only(result)
    # The page's call states: the call on load, the call lost, redials until one connects,
    # the hang-up.
    states = [s for _, s in hung_up["states"]]
    assert states[:3] == ["idle", "connecting", "connected"], states
    assert states[3] in ("closed", "failed"), states
    assert states[-2:] == ["connected", "closed"], states
    assert states.count("connected") == 2 and "idle" not in states[1:], states
    # The microphone was opened anew for every dial; the reconnected call's question came
    # from the fake microphone's file played again from its start, the first play being
    # long over.
    mics = reconnected["mics"]
    assert len(mics) >= 3, f"the microphone was opened at {mics}"
    assert mics[-1] - mics[0] > wav_seconds(fake_mic), (mics, wav_seconds(fake_mic))

    # The turn after the reconnect belongs to the new call, and the page shows it alone
    # (a new call starts a new transcript).
    assert second["turn"] >= 1, second
    assert user_entries == [second["text"]], user_entries
    assert assistant_entries == [second["reply"]], assistant_entries
    requests = vllm_double.requests[requests_before:]
    for turn in (first, second):
        assert prompts_for(requests, turn["text"]), (turn, [r["messages"] for r in requests])
    # The new daemon's call starts a new conversation: no history from the first call.
    second_prompts = [
        r["messages"] for r in requests if r["messages"][-1]["content"] == second["text"]
    ]
    assert [m["role"] for m in second_prompts[-1]] == ["system", "user"], second_prompts[-1]

    print(
        f"\nbrowser kiosk e2e: calls {first_call} -> {second_call}; states {states}; "
        f"microphone opened at {[round(m - mics[0], 2) for m in mics]} s; "
        f"left as {left['state']!r}; first {first['text']!r} -> {first['reply']!r}; "
        f"after the reconnect {second['text']!r} -> {second['reply']!r}; {timings}"
    )
