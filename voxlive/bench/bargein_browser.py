"""`voxlive bench bargein --chromium`: barge-in as a browser caller hears it.

Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) opens the daemon's
page and presses Call. Its microphone is a Web Audio graph the bench speaks into
(getUserMedia is replaced before the page loads), so the story and the interruption go
out when the bench says, through Chromium's own capture, Opus encoder and WebRTC stack;
what comes back goes through Chromium's receive jitter buffer, the one real users have.

Two level meters (AudioWorklets) stamp, on the page's clock, when the interruption's
first loud block went into the call and when each loud block of the reply came out of
the call's stream. The page's clock (performance.timeOrigin + now()) and the daemon's
monotonic stamps are both moved onto the wall clock of this machine, so the breakdown
of bargein_breakdown.py applies as with the aiortc caller. getStats() gives the jitter
buffer's mean delay (jitterBufferDelay / jitterBufferEmittedCount).
"""

from __future__ import annotations

import asyncio
import base64
import random
import shutil
import sys
import time
from typing import Any

import numpy as np

from voxlive.audio.resample import CALL_RATE
from voxlive.bench.bargein_breakdown import BargeInTimeline, frame_reached, playing_at
from voxlive.latency import AUDIBLE_RMS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # No name resolves: nothing can be fetched by host name, only by loopback address.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
    "--use-fake-ui-for-media-stream", "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
LOUD_RMS = AUDIBLE_RMS  # a block of the reply's voice, as the daemon counts its frames
ONSET_RMS = 0.001  # the first sound of what the caller says (as client.ONSET_RMS)
BLOCK_S = 128 / CALL_RATE  # one Web Audio render quantum

# Runs before the page's own script: a microphone the bench speaks into, and the meters.
PROBE_JS = """
(() => {
  const ctx = new AudioContext({ sampleRate: 48000 });
  const mic = ctx.createMediaStreamDestination();
  // Silence between what the bench says must still flow (the daemon counts the silence
  // that ends a turn): a source that always plays, at zero.
  const floor = ctx.createConstantSource();
  floor.offset.value = 0;
  floor.connect(mic);
  floor.start();
  const mute = ctx.createGain();
  mute.gain.value = 0;
  mute.connect(ctx.destination);
  const probe = { sent: [], heard: [] };
  window.__bargein = probe;
  const meterCode = `class Meter extends AudioWorkletProcessor {
    constructor(options) {
      super();
      this.threshold = options.processorOptions.threshold;
    }
    process(inputs) {
      const ch = inputs[0] && inputs[0][0];
      if (ch) {
        let s = 0;
        for (let i = 0; i < ch.length; i += 1) s += ch[i] * ch[i];
        if (Math.sqrt(s / ch.length) > this.threshold) this.port.postMessage(0);
      }
      return true;
    }
  }
  registerProcessor('meter', Meter);`;
  const ready = ctx.audioWorklet.addModule(
    URL.createObjectURL(new Blob([meterCode], { type: 'application/javascript' })));
  const wall = () => performance.timeOrigin + performance.now();
  async function meter(node, into, threshold) {
    await ready;
    const m = new AudioWorkletNode(ctx, 'meter', { processorOptions: { threshold } });
    m.port.onmessage = () => into.push(wall());
    node.connect(m);
    m.connect(mute);
  }
  probe.say = async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const pcm = new Int16Array(bytes.buffer);
    const buffer = ctx.createBuffer(1, pcm.length, 48000);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i += 1) data[i] = pcm[i] / 32768;
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(mic);
    await meter(source, probe.sent, ONSET_RMS);
    probe.sent.length = 0;
    source.start();
  };
  probe.listen = async () => {
    await meter(ctx.createMediaStreamSource(window.voxlive.remoteStream), probe.heard,
                LOUD_RMS);
  };
  probe.jitter = async () => {
    const stats = await window.voxlive.pc.getStats();
    let out = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.jitterBufferEmittedCount) {
        out = [s.jitterBufferDelay, s.jitterBufferEmittedCount];
      }
    });
    return out;
  };
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    if (constraints && constraints.audio) {
      await ready;
      await ctx.resume();
      return mic.stream;
    }
    throw new DOMException('the bench has no camera', 'NotFoundError');
  };
})();
""".replace("ONSET_RMS", str(ONSET_RMS)).replace("LOUD_RMS", str(LOUD_RMS))


def have_chromium() -> str | None:
    """Why the browser run cannot happen here, or None when it can."""
    if shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} is missing (Debian package chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing (pip install 'voxlive[test]')"
    return None


def pcm_base64(samples: np.ndarray) -> str:
    return base64.b64encode((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()).decode()


async def _events(page: Any) -> list[dict[str, Any]]:
    return await page.evaluate("() => window.voxlive.events")


async def _wait_event(page: Any, predicate: Any, timeout: float, start: int = 0
                      ) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = await _events(page)
        for i, event in enumerate(events[start:], start):
            if event.get("type") == "error":
                raise RuntimeError(f"the call reported an error: {event}")
            if predicate(event):
                return i, event
        await asyncio.sleep(0.05)
    kinds = [e.get("type") for e in (await _events(page))[start:]]
    raise TimeoutError(f"no matching event within {timeout} s; got {kinds}")


async def browser_trial(browser: Any, url: str, story: np.ndarray, interruption: np.ndarray,
                        seed: int) -> dict[str, Any]:
    """One call: ask for the story, talk over the reply, measure what the page heard."""
    context = await browser.new_context(service_workers="block")
    try:
        await context.add_init_script(PROBE_JS)
        page = await context.new_page()
        page.on("console", lambda m: m.type == "error" and print(
            f"chromium console: {m.text}", file=sys.stderr))
        await page.goto(url + "/", wait_until="load", timeout=15_000)
        await page.click("#call", timeout=5_000)
        await page.wait_for_selector("body[data-call-state=connected]", state="attached",
                                     timeout=20_000)
        await page.evaluate("() => window.__bargein.listen()")
        await page.evaluate("(b) => window.__bargein.say(b)", pcm_base64(story))
        mark, _ = await _wait_event(page, lambda e: e.get("type") == "state"
                                    and e.get("state") == "speaking", 60)
        await asyncio.sleep(random.Random(seed).uniform(0.8, 1.6))
        await page.evaluate("(b) => window.__bargein.say(b)", pcm_base64(interruption))
        _, event = await _wait_event(page, lambda e: e.get("type") == "barge_in", 15, mark)
        await asyncio.sleep(0.6)
        probe = await page.evaluate(
            "async () => ({sent: window.__bargein.sent, heard: window.__bargein.heard,"
            " jitter: await window.__bargein.jitter()})")
        await page.click("#hangup", timeout=5_000)
        return browser_breakdown(event, probe)
    finally:
        await context.close()


def browser_breakdown(event: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    """The daemon's stamps (monotonic) and the page's (epoch ms) on one clock (epoch s)."""
    to_wall = time.time() - time.monotonic()
    report = {k: v for k, v in event.items() if k != "received"}
    jitter = probe.get("jitter")
    report["jitter_buffer_ms"] = (round(jitter[0] / jitter[1] * 1000, 1) if jitter
                                  else float("nan"))
    if not probe["sent"]:
        return {**report, "caller_onset_to_silence_ms": float("nan"),
                "breakdown_missing": "no loud block of the interruption was metered"}
    sent = probe["sent"][0] / 1000
    received = [[pts, at + to_wall, rms] for pts, at, rms in event.get("received", [])]
    reached = frame_reached(received, sent)
    loud = [t / 1000 for t in probe["heard"]]
    heard = [t for t in loud if sent <= t <= sent + 2.0]
    missing = ("the first sound's VAD stamp" if reached is None
               else "the reply was not playing" if not playing_at(loud, sent)
               else "a loud block" if not heard else None)
    if missing is not None:
        return {**report, "caller_onset_to_silence_ms": float("nan"),
                "breakdown_missing": missing}
    timeline = BargeInTimeline(sent=sent, reached_vad=reached,
                               decided=event["decided_at"] + to_wall,
                               silent_sent=event["audible_until_at"] + to_wall,
                               silent_heard=max(heard) + BLOCK_S)
    return {**report, **timeline.parts()}


async def measure_browser(url: str, models: Any, trials: int, story_text: str,
                          interruptions: tuple[str, ...]) -> list[dict[str, Any]]:
    from playwright.async_api import async_playwright

    from voxlive.bench.latency import question_audio

    story = question_audio(models, story_text)
    results = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, timeout=30_000)
        try:
            for i in range(trials):
                said = question_audio(models, interruptions[i % len(interruptions)])
                try:
                    results.append(await browser_trial(browser, url, story, said, seed=i))
                except (TimeoutError, RuntimeError) as exc:
                    results.append({"caller_onset_to_silence_ms": float("nan"),
                                    "failed": str(exc)})
                print(f"chromium barge-in {i + 1}/{trials}: "
                      f"{results[-1].get('caller_onset_to_silence_ms')} ms", file=sys.stderr)
        finally:
            await browser.close()
    return results

