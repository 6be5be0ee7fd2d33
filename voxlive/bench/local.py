"""`voxlive bench local`: `voxlive local` measured over PulseAudio virtual devices.

A private PulseAudio server (voxlive.harness.local_pulse) gives PortAudio a "microphone"
(espeak-ng speech is played into it) and a "speaker"; the real LocalCall runs with the
profile's models and echo cancellation on. Same definitions as for calls:

- voice-to-voice (voxlive/bench/latency.py): the session's `turn_latency` event, from
  the user's last voiced frame to the first reply frame handed to the transport; each
  question in a fresh session. The sound card's buffers come on top (printed apart:
  `audio_buffers_ms`, PortAudio's input and output latency plus the jitter queue).
- barge-in (voxlive/bench/bargein.py): the session's `barge_in` event, from the user's
  speech onset to the last loud reply frame handed over; with the speaker looped back
  into the microphone (60 ms, half level), so the echo canceller is at work, and the
  echo's false pauses/stops before the user speaks counted.
- echo reduction: ERLE (dB, after convergence) of the canceller on recorded material
  (voxlive.harness.local_echo), at several delays and levels.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from voxlive.bench.latency import QUESTIONS, percentiles
from voxlive.models import load_or_explain

STORY = "Tell me a long story about a dragon who lives in a castle."
INTERRUPTIONS = ("Stop, please.", "Wait a moment.", "Hold on, I have a question.")
ECHO_CASES = ((0.06, -6.0, True), (0.09, -9.0, True), (0.12, -12.0, True), (0.09, -6.0, False))


class _Call:
    """A LocalCall on the virtual devices, with its events timestamped."""

    def __init__(self, models: Any, config: Any, profile_name: str):
        from voxlive.local_cli import LocalCall
        from voxlive.transports.terminal import TranscriptPrinter

        self.events: list[tuple[float, dict[str, Any]]] = []
        self.audio: Any = None
        opened = asyncio.Event()

        def on_audio(audio: Any) -> None:
            self.audio = audio
            opened.set()

        self.opened = opened
        self.call = LocalCall(
            models, config, config.profile(profile_name).vad.threshold,
            input_device="pulse", output_device="pulse",
            printer=TranscriptPrinter(io.StringIO(), color=False),
            on_event=lambda e: self.events.append((time.monotonic(), e)),
            on_audio=on_audio, echo_cancellation=True)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> _Call:
        self.task = asyncio.ensure_future(self.call.run(self.stop))
        await asyncio.wait_for(self.opened.wait(), 20)
        await asyncio.sleep(0.5)  # PulseAudio starts the streams
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 20)

    async def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float,
                       since: float) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in self.events:
                if at >= since and match(event):
                    return at, event
            await asyncio.sleep(0.02)
        kinds = [e["type"] for at, e in self.events if at >= since]
        raise TimeoutError(f"no such event in {timeout:g} s (got {kinds})")

    def kinds_since(self, since: float) -> list[str]:
        return [e["type"] for at, e in self.events if at >= since]


def _state(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "state" and e.get("state") == name


async def _speech_file(pulse: Any, text: str, name: str) -> str:
    from voxlive.harness.speech import espeak, write_wav

    path = pulse.dir / f"{name}.wav"
    write_wav(str(path), espeak(text, 48_000), 48_000)
    return str(path)


async def voice_to_voice(pulse: Any, config: Any, name: str, models: Any,
                         turns: int) -> list[dict[str, Any]]:
    reports = []
    for i in range(turns):
        question = QUESTIONS[i % len(QUESTIONS)]
        wav = await _speech_file(pulse, question, f"q{i}")
        async with _Call(models, config, name) as call:
            asked = time.monotonic()
            await pulse.play(wav)
            try:
                _, latency = await call.wait_for(lambda e: e["type"] == "turn_latency", 90, asked)
                await call.wait_for(_state("listening"), 90, asked + 0.1)
            except TimeoutError as exc:
                print(f"turn {i + 1}/{turns}: {exc}", file=sys.stderr)
                continue
            audio = call.audio
            buffers = (audio.input_latency + audio.output_latency) * 1000
            report = {k: v for k, v in latency.items() if k not in ("type",)}
            report["audio_buffers_ms"] = round(buffers, 1)
            reports.append(report)
            print(f"turn {i + 1}/{turns}: {report['voice_to_voice_ms']:.0f} ms "
                  f"(+{buffers:.0f} ms of audio buffers)", file=sys.stderr)
    return reports


async def barge_in(pulse: Any, config: Any, name: str, models: Any,
                   trials: int) -> list[dict[str, Any]]:
    story = await _speech_file(pulse, STORY, "story")
    results = []
    for i in range(trials):
        interruption = await _speech_file(pulse, INTERRUPTIONS[i % len(INTERRUPTIONS)], f"i{i}")
        async with _Call(models, config, name) as call:
            loopback = pulse.loopback("vox_out.monitor", "vox_in", latency_ms=60, gain=0.5)
            try:
                asked = time.monotonic()
                await pulse.play(story)
                speaking, _ = await call.wait_for(_state("speaking"), 90, asked)
                await asyncio.sleep(random.Random(i).uniform(1.5, 2.5))  # echo only
                echo = call.kinds_since(speaking)
                said = time.monotonic()
                await pulse.play(interruption)
                _, event = await call.wait_for(lambda e: e["type"] == "barge_in", 15, said)
            except TimeoutError as exc:
                print(f"barge-in {i + 1}/{trials}: {exc}", file=sys.stderr)
                continue
            finally:
                pulse.unload(loopback)
            result = {k: v for k, v in event.items() if k != "type"}
            result["echo_pauses_before"] = echo.count("speech_started")
            result["echo_stops_before"] = echo.count("interrupted")
            results.append(result)
            print(f"barge-in {i + 1}/{trials}: {result.get('onset_to_silence_ms')} ms; "
                  f"echo pauses before the user spoke: {result['echo_pauses_before']}",
                  file=sys.stderr)
    return results


def echo_reduction() -> list[dict[str, Any]]:
    from voxlive.harness.local_echo import EchoCase, converged_erle, reply_speech

    far = reply_speech()
    rows = []
    for delay, level, room in ECHO_CASES:
        started = time.perf_counter()
        erle, mic, _ = converged_erle(EchoCase(delay, level, room), far)
        cost = (time.perf_counter() - started) / (len(mic) / 16_000)
        rows.append({"delay_ms": round(delay * 1000), "level_db": level, "room": room,
                     "erle_db": round(erle, 1), "cpu_share": round(cost, 4)})
        print(f"echo {delay * 1000:.0f} ms {level:g} dB room={room}: ERLE {erle:.1f} dB",
              file=sys.stderr)
    return rows


async def measure(config: Any, name: str, models: Any, turns: int,
                  trials: int) -> dict[str, Any]:
    from voxlive.harness.local_pulse import PulseServer
    from voxlive.transports.local import reinitialize_portaudio

    pulse = PulseServer()
    pulse.start()
    try:
        reinitialize_portaudio()
        turns_done = await voice_to_voice(pulse, config, name, models, turns)
        barges = await barge_in(pulse, config, name, models, trials)
    finally:
        pulse.stop()
        with contextlib.suppress(Exception):
            reinitialize_portaudio()
    erle = echo_reduction()
    return {
        "benchmark": "local_session",
        "profile": name,
        "voice_to_voice": {
            "turns": len(turns_done),
            "voice_to_voice_ms": percentiles([t["voice_to_voice_ms"] for t in turns_done]),
            "audio_buffers_ms": percentiles([t["audio_buffers_ms"] for t in turns_done]),
            "reports": turns_done,
        },
        "barge_in": {
            "trials": len(barges),
            "onset_to_silence_ms": percentiles([t["onset_to_silence_ms"] for t in barges]),
            "onset_to_decision_ms": percentiles([t["onset_to_decision_ms"] for t in barges]),
            "echo_pauses_before": sum(t["echo_pauses_before"] for t in barges),
            "echo_stops_before": sum(t["echo_stops_before"] for t in barges),
            "reports": barges,
        },
        "echo_reduction": erle,
    }


def run_local_bench(config: Any, profile_name: str | None, turns: int, trials: int,
                    as_json: bool) -> int:
    from voxlive.audio.aec import AecUnavailable, aec_description
    from voxlive.harness.local_pulse import PulseUnavailable
    from voxlive.transports.local import AudioUnavailable, sounddevice

    try:
        sounddevice()
        echo = aec_description()
    except (AudioUnavailable, AecUnavailable) as exc:
        print(f"voxlive bench local: {exc}", file=sys.stderr)
        return 2
    name, models = load_or_explain(config, profile_name)
    try:
        result = asyncio.run(measure(config, name, models, turns, trials))
    except PulseUnavailable as exc:
        print(f"voxlive bench local: {exc}", file=sys.stderr)
        return 2
    result["echo_canceller"] = echo
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    v2v, barge = result["voice_to_voice"], result["barge_in"]
    print(f"voxlive local over PulseAudio virtual devices, profile {name}, {echo}")
    print(f"  voice-to-voice ms      p50 {v2v['voice_to_voice_ms']['p50']:7.1f}  "
          f"p95 {v2v['voice_to_voice_ms']['p95']:7.1f}  ({v2v['turns']} turns; "
          f"+{v2v['audio_buffers_ms']['p50']:.0f} ms of audio buffers)")
    print(f"  barge-in onset-to-silence ms p50 {barge['onset_to_silence_ms']['p50']:7.1f}  "
          f"p95 {barge['onset_to_silence_ms']['p95']:7.1f}  ({barge['trials']} trials; echo "
          f"before the user spoke: {barge['echo_pauses_before']} pauses, "
          f"{barge['echo_stops_before']} stops)")
    for row in result["echo_reduction"]:
        print(f"  ERLE {row['delay_ms']:4d} ms {row['level_db']:5.1f} dB "
              f"{'room' if row['room'] else 'direct'}: {row['erle_db']:5.1f} dB")
    print(json.dumps({"voice_to_voice_ms": v2v["voice_to_voice_ms"],
                      "barge_in_onset_to_silence_ms": barge["onset_to_silence_ms"],
                      "erle_db": [r["erle_db"] for r in result["echo_reduction"]]}))
    return 0
