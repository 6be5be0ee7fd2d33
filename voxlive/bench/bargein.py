"""`voxlive bench bargein`: how fast talking over the reply silences it, and whether
anything but real speech does.

Over real WebRTC on loopback, with the profile's real models:

- latency trials: ask for a story, talk over it after 0.8-1.6 s; the daemon's
  `barge_in` event gives onset-to-silence (the user's first voiced audio arriving to the
  end of the last reply frame sent) and the frames sent after the decision; the caller
  measures the same from its side (first interrupting sample sent to last loud frame
  received), which adds both network legs.
- false-interruption corpus: the reply played back into the microphone at several
  levels and delays (open speakers), short noises, and backchannels ("mm-hm"). A
  false stop is an `interrupted` event: the reply was cut. A pause that resumes is
  counted separately (the reply paused and went on).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

import numpy as np

from voxlive.audio.resample import CALL_RATE
from voxlive.bench.bargein_breakdown import (
    PARTS,
    BargeInTimeline,
    frame_reached,
    last_loud_end,
    playing_at,
)
from voxlive.bench.latency import percentiles, question_audio
from voxlive.models import load_or_explain

STORY = "Tell me a long story about a dragon who lives in a castle."
INTERRUPTIONS = ("Stop, please.", "Wait a moment.", "Hold on, I have a question.")
ECHO_LEVELS = (0.2, 0.5, 1.0)
ECHO_DELAYS_S = (0.06, 0.15, 0.3)
OBSERVE_S = 6.0


def noises() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(int(0.06 * CALL_RATE)) / CALL_RATE
    knock = (np.sin(2 * np.pi * 180 * t) * np.exp(-t * 60) * 0.8).astype(np.float32)
    click = np.zeros(int(0.01 * CALL_RATE), np.float32)
    click[:40] = 0.9
    cough = rng.standard_normal(int(0.25 * CALL_RATE)).astype(np.float32)
    cough *= np.hanning(len(cough)).astype(np.float32) * 0.4
    return {"click": click, "knock": knock, "cough_burst": cough,
            "pink_noise": pink_noise(rng, 3.0, 0.05), "music": music(4.0, 0.08)}


def pink_noise(rng: np.random.Generator, seconds: float, rms: float) -> np.ndarray:
    """1/f noise (a fan, traffic, a room): white noise shaped in the frequency domain."""
    n = int(seconds * CALL_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / CALL_RATE)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n)
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.05 * CALL_RATE))
    return (noise / np.sqrt(np.mean(noise**2)) * rms * fade).astype(np.float32)


def music(seconds: float, rms: float) -> np.ndarray:
    """A melody over chords, with harmonics and plucked decays (a radio in the room)."""
    t = np.arange(int(seconds * CALL_RATE)) / CALL_RATE
    out = np.zeros_like(t)
    note_s = 0.25
    melody = (0, 4, 7, 12, 7, 4, 2, 5, 9, 14, 9, 5, 0, 4, 7, 11)
    chords = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))
    for i in range(int(seconds / note_s)):
        start = int(i * note_s * CALL_RATE)
        tt = t[start:] - t[start]
        pitch = 440 * 2 ** ((melody[i % len(melody)] - 9) / 12)
        for harmonic, level in ((1, 1.0), (2, 0.5), (3, 0.25)):
            out[start:] += level * np.sin(2 * np.pi * pitch * harmonic * tt) * np.exp(-tt * 6)
        if i % 4 == 0:
            for step in chords[(i // 4) % len(chords)]:
                chord_pitch = 220 * 2 ** ((step - 9) / 12)
                out[start:] += 0.4 * np.sin(2 * np.pi * chord_pitch * tt) * np.exp(-tt * 1.5)
    return (out / np.sqrt(np.mean(out**2)) * rms).astype(np.float32)


async def start_call(url: str, echo_gain: float = 0.0, echo_delay_s: float = 0.0) -> Any:
    from voxlive.harness.client import CallClient

    client = CallClient(url)
    client.mic.echo_gain, client.mic.echo_delay_s = echo_gain, echo_delay_s
    await client.connect()
    return client


async def story_playing(client: Any, models: Any) -> int:
    mark = len(client.events)
    client.mic.say(question_audio(models, STORY))
    speaking = await client.wait_for(
        lambda e: e["type"] in ("error",) or (e["type"] == "state" and e["state"] == "speaking"),
        timeout=60, start=mark)
    if speaking["type"] == "error":
        raise RuntimeError(f"the story failed: {speaking['message']}")
    return client.events.index(speaking)


async def latency_trial(url: str, models: Any, seed: int) -> dict[str, Any]:
    client = await start_call(url)
    try:
        # Made before the call talks: espeak-ng runs as a blocking subprocess, which would
        # stall this loop (the caller's and the daemon's) just as the interruption starts.
        interruption = question_audio(models, INTERRUPTIONS[seed % len(INTERRUPTIONS)])
        mark = await story_playing(client, models)
        await asyncio.sleep(random.Random(seed).uniform(0.8, 1.6))
        client.mic.say(interruption)
        event = await client.wait_for(lambda e: e["type"] == "barge_in", 15, mark)
        await asyncio.sleep(0.5)
        return {**{k: v for k, v in event.items() if k != "received"},
                **caller_breakdown(client, event)}
    finally:
        await client.close()


def caller_breakdown(client: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The caller-side figure and its parts (bargein_breakdown.py) for the latest say()."""
    sent, pts = client.mic.sound_at[-1], client.mic.sound_pts[-1]
    reached = frame_reached(event.get("received", []), sent, pts)
    loud = client.loud_frames_at()
    heard = last_loud_end(loud, sent)
    missing = ("the first sound's VAD stamp" if reached is None
               else "the reply was not playing" if not playing_at(loud, sent)
               else "a loud frame" if heard is None else None)
    if missing is not None:
        return {"caller_onset_to_silence_ms": float("nan"), "breakdown_missing": missing}
    assert reached is not None and heard is not None
    timeline = BargeInTimeline(sent=sent, reached_vad=reached, decided=event["decided_at"],
                               silent_sent=event["audible_until_at"], silent_heard=heard)
    return timeline.parts()


async def false_interruption_trial(url: str, models: Any, kind: str, echo: tuple[float, float]
                                   | None = None, sound: np.ndarray | None = None
                                   ) -> dict[str, Any]:
    gain, delay = echo or (0.0, 0.0)
    client = await start_call(url, gain, delay)
    try:
        mark = await story_playing(client, models)
        if sound is not None:
            await asyncio.sleep(1.0)
            client.mic.say(sound)
        await asyncio.sleep(OBSERVE_S)
        kinds = [e["type"] for e in client.events[mark:]]
        return {
            "kind": kind, "echo_gain": gain, "echo_delay_s": delay,
            "false_stop": "interrupted" in kinds,
            "paused": kinds.count("speech_started"),
            "resumed": kinds.count("resumed"),
            # what the daemon heard as the user's words (why a stop happened)
            "transcripts": [e["text"] for e in client.events[mark:]
                            if e["type"] == "user_transcript"],
        }
    finally:
        await client.close()


def latency_summary(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95 of the server-side and caller-side figures and of the caller's parts."""
    keys = ("onset_to_silence_ms", "onset_to_decision_ms", "caller_onset_to_silence_ms",
            *PARTS, "jitter_buffer_ms")
    summary: dict[str, Any] = {key: percentiles([t.get(key, float("nan")) for t in trials])
                               for key in keys if any(key in t for t in trials)}
    summary["max_frames_after_decision"] = max(
        (t["frames_after_decision"] for t in trials if "frames_after_decision" in t),
        default=0)
    summary["trials"] = trials
    return summary


async def measure(config: Any, profile_name: str, models: Any, trials: int,
                  chromium_trials: int = 0) -> dict[str, Any]:
    from voxlive.harness.speech import espeak, have_espeak
    from voxlive.server.app import Daemon, running

    daemon = Daemon(config, profile_name, models, host="127.0.0.1")
    async with running(daemon) as url:
        latency = []
        for i in range(trials):
            latency.append(await latency_trial(url, models, seed=i))
            print(f"barge-in {i + 1}/{trials}: {latency[-1]['onset_to_silence_ms']} ms",
                  file=sys.stderr)
        browser: list[dict[str, Any]] = []
        if chromium_trials:
            from voxlive.bench.bargein_browser import measure_browser

            browser = await measure_browser(url, models, chromium_trials, STORY, INTERRUPTIONS)
        corpus = []
        for gain in ECHO_LEVELS:
            for delay in ECHO_DELAYS_S:
                corpus.append(await false_interruption_trial(url, models, "echo", (gain, delay)))
                print(f"echo gain {gain} delay {delay}: {corpus[-1]}", file=sys.stderr)
        for name, sound in noises().items():
            corpus.append(await false_interruption_trial(url, models, name, sound=sound))
            print(f"{name}: {corpus[-1]}", file=sys.stderr)
        if have_espeak():
            for word in ("mm-hm", "uh-huh", "yeah"):
                sound = espeak(word, CALL_RATE)
                corpus.append(await false_interruption_trial(url, models, f"backchannel {word}",
                                                             sound=sound))
                print(f"{word}: {corpus[-1]}", file=sys.stderr)
    return {
        "benchmark": "barge_in",
        "profile": profile_name,
        "turn_settings": config.turn.model_dump(),
        "latency": latency_summary(latency),
        **({"chromium": latency_summary(browser)} if chromium_trials else {}),
        "false_interruptions": {
            "trials": len(corpus),
            "false_stops": sum(t["false_stop"] for t in corpus),
            "paused_then_resumed": sum(1 for t in corpus if t["paused"] and t["resumed"]),
            "corpus": corpus,
        },
    }


def print_latency(title: str, lat: dict[str, Any]) -> None:
    print(title)
    print("  server side (onset arrival -> last loud frame sent):")
    for key in ("onset_to_decision_ms", "onset_to_silence_ms"):
        print(f"    {key:28} p50 {lat[key]['p50']:7.1f}  p95 {lat[key]['p95']:7.1f}")
    print("  caller side (first loud sample sent -> last loud sample received), and its parts:")
    for key in ("caller_onset_to_silence_ms", *PARTS, "jitter_buffer_ms"):
        if key in lat:
            print(f"    {key:28} p50 {lat[key]['p50']:7.1f}  p95 {lat[key]['p95']:7.1f}")
    print(f"  frames sent after the decision (max): {lat['max_frames_after_decision']}")


def run_bargein_bench(config: Any, profile_name: str | None, trials: int, as_json: bool,
                      chromium_trials: int = 0) -> int:
    if not 1 <= trials <= 50 or not 0 <= chromium_trials <= 50:
        print("voxlive bench: --trials and --chromium must be between 1 (0) and 50",
              file=sys.stderr)
        return 2
    if chromium_trials:
        from voxlive.bench.bargein_browser import have_chromium

        if (why := have_chromium()) is not None:
            print(f"voxlive bench: --chromium: {why}", file=sys.stderr)
            return 2
    name, models = load_or_explain(config, profile_name)
    result = asyncio.run(measure(config, name, models, trials, chromium_trials))
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    lat, false = result["latency"], result["false_interruptions"]
    print_latency(f"barge-in, profile {name}, aiortc caller, {trials} trials", lat)
    if "chromium" in result:
        print_latency(f"barge-in, Chromium caller, {chromium_trials} trials", result["chromium"])
    print(f"false interruptions: {false['false_stops']} false stops in {false['trials']} trials "
          f"({false['paused_then_resumed']} paused and resumed)")
    print(json.dumps({"latency": {k: v for k, v in lat.items() if k != "trials"},
                      "chromium": {k: v for k, v in result.get("chromium", {}).items()
                                   if k != "trials"},
                      "false_stops": false["false_stops"], "trials": false["trials"]}))
    return 0
