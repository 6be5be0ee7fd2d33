"""`voxlive bench latency`: voice-to-voice latency over real WebRTC, on loopback.

The daemon and an aiortc caller run in this process; the caller speaks questions
made with espeak-ng (or the profile's own TTS when espeak-ng is missing), one new call
per question, waits for each reply to finish, and collects the `turn_latency` events.
Prints p50/p95 of voice-to-voice and of each stage, as a table or as JSON.

`--transport realtime-ws` asks every question twice, over WebRTC and through the
Realtime API's WebSocket (voxlive/bench/realtime_ws.py), interleaved, and adds the
client-side voice-to-voice of both (last question sample sent -> first reply audio
received), which is where the transports differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
from typing import Any

import numpy as np

from voxlive.audio.resample import CALL_RATE, resample_once
from voxlive.latency import STAGES
from voxlive.models import load_or_explain

QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "What colour is the sky on a clear day?",
    "Can you name a large animal that lives in Africa?",
    "What do bees make?",
    "Which planet do we live on?",
)
METRICS = ("voice_to_voice_ms", *STAGES)
TRANSPORT_METRICS = ("client_voice_to_voice_ms", "transport_ms", *METRICS)
"""transport_ms: client-side minus the daemon's voice-to-voice, turn by turn: the time the
audio spends in the transport both ways (plus a constant: the question's trailing
silence before the VAD's last voiced window, the same for both transports)."""


def percentiles(values: list[float]) -> dict[str, float]:
    data = np.array([v for v in values if v == v])  # drop NaN
    if data.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan")}
    return {
        "p50": round(float(np.percentile(data, 50)), 1),
        "p95": round(float(np.percentile(data, 95)), 1),
        "mean": round(float(data.mean()), 1),
    }


def question_audio(models: Any, text: str) -> np.ndarray:
    from voxlive.harness.speech import espeak, have_espeak

    if have_espeak():
        return espeak(text, CALL_RATE)
    audio = np.concatenate(list(models.tts.synthesize(text)))
    return resample_once(audio, models.tts.sample_rate, CALL_RATE)


async def one_turn(url: str, models: Any, question: str) -> dict[str, Any] | None:
    """Ask one question in a new call (so every turn starts from an empty history);
    the turn's `turn_latency` event, or None if the reply had nothing to say aloud."""
    from voxlive.harness.client import CallClient

    client = CallClient(url)
    await client.connect()
    try:
        audio = question_audio(models, question)
        client.mic.say(audio)
        done = await client.wait_for(
            lambda e: e["type"] == "error" or (e["type"] == "assistant_text" and e["final"]),
            timeout=60)
        if done["type"] == "error":
            raise RuntimeError(f"{question!r} failed: {done['message']}")
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=60, start=client.events.index(done))
        latency = next((e for e in client.events if e["type"] == "turn_latency"), None)
        if latency is None:
            return None
        said = next((e["text"] for e in client.events if e["type"] == "user_transcript"), "")
        restarts = sum(e["type"] == "speech_started" for e in client.events) - 1
        end = client.mic.said_at[0] + len(audio) / CALL_RATE
        first = next((t for t in client.loud_frames_at() if t > end), float("nan"))
        return {**latency, "question": question, "heard": said, "reply": done["text"],
                "reopened_turns": restarts,
                "client_voice_to_voice_ms": round((first - end) * 1000, 1)}
    finally:
        await client.close()


async def realtime_turn(url: str, daemon: Any, models: Any, question: str
                        ) -> dict[str, Any] | None:
    """One question through the Realtime WebSocket; the daemon's own turn_latency (its
    metrics hook sees the session's events) joined with the client's timing."""
    from voxlive.bench.realtime_ws import ws_turn

    seen: list[dict[str, Any]] = []
    observe = daemon.metrics.observe_event

    def spy(event: dict[str, Any]) -> None:
        if event.get("type") == "turn_latency":
            seen.append(event)
        observe(event)

    daemon.metrics.observe_event = spy
    try:
        result = await ws_turn(url, question_audio(models, question))
    finally:
        daemon.metrics.observe_event = observe
    if not seen or result.get("status") != "completed":
        return None
    return _with_transport({**seen[0], **result, "question": question})


def _with_transport(report: dict[str, Any]) -> dict[str, Any]:
    report["transport_ms"] = round(report["client_voice_to_voice_ms"]
                                   - report["voice_to_voice_ms"], 1)
    return report


async def measure(variants: list[tuple[str, Any]], profile_name: str, models: Any,
                  turns: int, transports: dict[str, str] | None = None
                  ) -> list[dict[str, Any]]:
    """Each question is asked of every variant (a config) in turn, interleaved, so that
    load on the machine and the questions weigh on all variants alike."""
    from voxlive.server.app import Daemon, running

    reports: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    async with contextlib.AsyncExitStack() as stack:
        daemons = {name: Daemon(config, profile_name, models, host="127.0.0.1")
                   for name, config in variants}
        urls = {name: await stack.enter_async_context(running(daemon))
                for name, daemon in daemons.items()}
        for i in range(turns):
            question = QUESTIONS[i % len(QUESTIONS)]
            for name, _ in variants:
                if (transports or {}).get(name) == "realtime-ws":
                    report = await realtime_turn(urls[name], daemons[name], models, question)
                else:
                    report = await one_turn(urls[name], models, question)
                    if report is not None and transports:
                        report = _with_transport(report)
                if report is None:
                    print(f"{name} turn {i + 1}/{turns}: no spoken reply", file=sys.stderr)
                    continue
                reports[name].append(report)
                print(f"{name} turn {i + 1}/{turns}: {report['voice_to_voice_ms']:.0f} ms  "
                      f"{report['heard']!r} -> {report['reply'][:60]!r}", file=sys.stderr)
    return [{
        "benchmark": "voice_to_voice_latency",
        "variant": name,
        "profile": profile_name,
        "models": {s: getattr(models, s).description for s in ("vad", "stt", "llm", "tts")},
        "machine": {"cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "turn_settings": config.turn.model_dump(),
        "turns": len(reports[name]),
        "summary": {m: percentiles([r[m] for r in reports[name]])
                    for m in (TRANSPORT_METRICS if transports else METRICS)},
        "per_turn": reports[name],
    } for name, config in variants]


def print_table(result: dict[str, Any]) -> None:
    turn = result["turn_settings"]
    print(f"voice-to-voice latency, profile {result['profile']}, {result['turns']} turns, "
          f"{result['machine']['cpus']} CPUs, speculative end at "
          f"{turn['speculative_silence_ms']} ms, commit at {turn['end_of_turn_silence_ms']} ms")
    print(f"{'stage':24} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    for metric, stats in result["summary"].items():
        name = metric.removesuffix("_ms")
        print(f"{name:24} {stats['p50']:9.1f} {stats['p95']:9.1f} {stats['mean']:9.1f}")


def run_latency_bench(config: Any, profile_name: str | None, turns: int, as_json: bool,
                      compare_speculative: bool = False, transport: str = "webrtc") -> int:
    if turns < 1 or turns > 100:
        print("voxlive bench: --turns must be between 1 and 100", file=sys.stderr)
        return 2
    name, models = load_or_explain(config, profile_name)
    variants = [("speculative_on" if compare_speculative else "configured", config)]
    if compare_speculative:
        _greedy(models)  # so that both settings answer a question with the same words
        turn = config.turn.model_copy(update={
            "speculative_silence_ms": config.turn.end_of_turn_silence_ms,
            "transcribe_silence_ms": None})
        variants.append(("speculative_off", config.model_copy(update={"turn": turn})))
    if transport == "realtime-ws":
        return _compare_transports(config, name, models, turns, as_json)
    results = asyncio.run(measure(variants, name, models, turns))
    if as_json:
        print(json.dumps(results[0] if len(results) == 1 else {
            "speculative_on": results[0], "speculative_off": results[1],
            "p50_ratio_on_to_off": _ratio(results, "p50"),
            "p95_ratio_on_to_off": _ratio(results, "p95"),
        }, indent=2))
        return 0
    for result in results:
        print_table(result)
        print(json.dumps({"summary": result["summary"]}))
    if compare_speculative:
        print(f"voice-to-voice, speculative on/off: p50 ratio {_ratio(results, 'p50')}, "
              f"p95 ratio {_ratio(results, 'p95')}")
    return 0


def _compare_transports(config: Any, name: str, models: Any, turns: int,
                        as_json: bool) -> int:
    variants = [("webrtc", config), ("realtime-ws", config)]
    transports = {"webrtc": "webrtc", "realtime-ws": "realtime-ws"}
    _greedy(models)  # both transports hear the same words: the same LLM and TTS work
    results = asyncio.run(measure(variants, name, models, turns, transports))
    deltas = {}
    for metric in ("transport_ms", "client_voice_to_voice_ms", "voice_to_voice_ms"):
        webrtc, ws = (r["summary"][metric]["p50"] for r in results)
        deltas[f"{metric.removesuffix('_ms')}_p50_ws_minus_webrtc_ms"] = round(ws - webrtc, 1)
    if as_json:
        print(json.dumps({"webrtc": results[0], "realtime-ws": results[1], **deltas},
                         indent=2))
        return 0
    for result in results:
        print(f"transport: {result['variant']}")
        print_table(result)
    for key, value in deltas.items():
        print(f"{key}: {value}")
    return 0


def _greedy(models: Any) -> None:
    llm_config = getattr(models.llm, "config", None)
    if llm_config is not None and hasattr(llm_config, "temperature"):
        models.llm.config = llm_config.model_copy(update={"temperature": 0.0})


def _ratio(results: list[dict[str, Any]], stat: str) -> float:
    on, off = (r["summary"]["voice_to_voice_ms"][stat] for r in results)
    return round(on / off, 3) if off else float("nan")
