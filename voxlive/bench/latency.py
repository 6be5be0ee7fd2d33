"""`voxlive bench latency`: voice-to-voice latency over real WebRTC, on loopback.

The daemon and an aiortc caller run in this process; the caller speaks questions
made with espeak-ng (or the profile's own TTS when espeak-ng is missing), one new call
per question, waits for each reply to finish, and collects the `turn_latency` events.
Prints p50/p95 of voice-to-voice and of each stage, as a table or as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from typing import Any

import numpy as np

from voxlive.audio.resample import CALL_RATE, resample_once
from voxlive.latency import STAGES

QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "What colour is the sky on a clear day?",
    "Can you name a large animal that lives in Africa?",
    "What do bees make?",
    "Which planet do we live on?",
)
METRICS = ("voice_to_voice_ms", *STAGES)


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
    from voxlive.bench.speech import espeak, have_espeak

    if have_espeak():
        return espeak(text, CALL_RATE)
    audio = np.concatenate(list(models.tts.synthesize(text)))
    return resample_once(audio, models.tts.sample_rate, CALL_RATE)


async def measure(config: Any, profile_name: str, models: Any, turns: int) -> dict[str, Any]:
    from voxlive.bench.client import CallClient
    from voxlive.server.app import Daemon, running

    daemon = Daemon(config, profile_name, models, host="127.0.0.1")
    reports: list[dict[str, Any]] = []
    async with running(daemon) as url:
        for i in range(turns):
            # A new call per question: every turn starts from the same (empty) history.
            client = CallClient(url)
            await client.connect()
            try:
                question = QUESTIONS[i % len(QUESTIONS)]
                mark = len(client.events)
                client.mic.say(question_audio(models, question))
                done = await client.wait_for(
                    lambda e: e["type"] == "error" or (e["type"] == "assistant_text"
                                                       and e["final"]), 60, start=mark)
                if done["type"] == "error":
                    raise RuntimeError(f"turn {i + 1} failed: {done['message']}")
                await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                                      timeout=60, start=client.events.index(done))
                latency = next((e for e in client.events[mark:] if e["type"] == "turn_latency"),
                               None)
                if latency is None:  # the model's reply had nothing to say aloud
                    print(f"turn {i + 1}/{turns}: no spoken reply ({done['text']!r})",
                          file=sys.stderr)
                    continue
                said = next((e["text"] for e in client.events[mark:]
                             if e["type"] == "user_transcript"), "")
                restarts = sum(e["type"] == "speech_started" for e in client.events[mark:]) - 1
                reports.append({**latency, "question": question, "heard": said,
                                "reply": done["text"], "reopened_turns": restarts})
                print(f"turn {i + 1}/{turns}: {latency['voice_to_voice_ms']:.0f} ms  "
                      f"{said!r} -> {done['text'][:60]!r}", file=sys.stderr)
            finally:
                await client.close()
    return {
        "benchmark": "voice_to_voice_latency",
        "profile": profile_name,
        "models": {s: getattr(models, s).description for s in ("vad", "stt", "llm", "tts")},
        "vision": models.vision.description if models.vision else None,
        "machine": {"cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "turn_settings": config.turn.model_dump(),
        "turns": len(reports),
        "summary": {m: percentiles([r[m] for r in reports]) for m in METRICS},
        "per_turn": reports,
    }


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
                      compare_speculative: bool = False) -> int:
    from voxlive.cli import load_or_explain

    if turns < 1 or turns > 100:
        print("voxlive bench: --turns must be between 1 and 100", file=sys.stderr)
        return 2
    name, models = load_or_explain(config, profile_name)
    results = [asyncio.run(measure(config, name, models, turns))]
    if compare_speculative:
        turn = config.turn.model_copy(
            update={"speculative_silence_ms": config.turn.end_of_turn_silence_ms})
        results.append(asyncio.run(measure(config.model_copy(update={"turn": turn}), name,
                                           models, turns)))
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


def _ratio(results: list[dict[str, Any]], stat: str) -> float:
    on, off = (r["summary"]["voice_to_voice_ms"][stat] for r in results)
    return round(on / off, 3) if off else float("nan")
