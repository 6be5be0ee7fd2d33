"""`voxlive bench emotion`: what hearing *how* it was said costs.

Times the profile's emotion stage and its STT on the same spoken turns (espeak-ng, or
the profile's own TTS), one after the other on this machine: the emotion stage runs
beside STT in a call, so it adds no time to a turn as long as it is faster than STT.
The time it does add in calls is `emotion_wait_ms` in `voxlive bench latency`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from voxlive.audio.resample import MODEL_RATE, resample_once
from voxlive.bench.latency import percentiles
from voxlive.models import load_or_explain

# What a backend may cost per second of audio, so that it stays far below STT on 2 cores
# (the prosody backend's target; it was once a timed assertion in tests/test_emotion.py).
BUDGET_MS_PER_AUDIO_SECOND = {"prosody": 20.0}

SENTENCES = (
    "What is the capital of France?",
    "I just got the news and I can hardly believe it, this is the best day of my life!",
    "Well, I suppose we could try again tomorrow, if you really think it would help at all.",
)


def spoken(models: Any, text: str) -> np.ndarray:
    from voxlive.harness.speech import espeak, have_espeak

    if have_espeak():
        return espeak(text, MODEL_RATE)
    audio = np.concatenate(list(models.tts.synthesize(text)))
    return resample_once(audio, models.tts.sample_rate, MODEL_RATE)


def run_emotion_bench(config: Any, profile_name: str | None, repeats: int, as_json: bool) -> int:
    name, models = load_or_explain(config, profile_name)
    if models.emotion is None:
        print(f"voxlive bench: profile {name} has no emotion stage", file=sys.stderr)
        return 2
    per_second, stt_per_second, ratio = [], [], []
    for text in SENTENCES:
        audio = spoken(models, text)
        seconds = len(audio) / MODEL_RATE
        for _ in range(repeats):
            speaker = models.emotion.new_speaker()
            started = time.perf_counter()
            models.emotion.analyse(audio, speaker)
            emotion_s = time.perf_counter() - started
            started = time.perf_counter()
            models.stt.transcribe(audio)
            stt_s = time.perf_counter() - started
            per_second.append(emotion_s * 1000 / seconds)
            stt_per_second.append(stt_s * 1000 / seconds)
            ratio.append(100 * emotion_s / stt_s)
    result = {
        "benchmark": "emotion", "profile": name, "backend": models.emotion.description,
        "emotion_ms_per_audio_second": percentiles(per_second),
        "stt_ms_per_audio_second": percentiles(stt_per_second),
        "emotion_time_percent_of_stt": percentiles(ratio),
    }
    budget = BUDGET_MS_PER_AUDIO_SECOND.get(config.profile(name).emotion.backend)
    if budget is not None:
        result["budget_ms_per_audio_second"] = budget
        result["within_budget"] = result["emotion_ms_per_audio_second"]["p50"] <= budget
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"emotion, profile {name}, backend {result['backend']}")
    for key in ("emotion_ms_per_audio_second", "stt_ms_per_audio_second",
                "emotion_time_percent_of_stt"):
        stats = result[key]
        print(f"  {key:30} p50 {stats['p50']:8.3f}  p95 {stats['p95']:8.3f}")
    if budget is not None:
        verdict = "within" if result["within_budget"] else "OVER"
        print(f"  budget {budget:.0f} ms per audio second (p50): {verdict}")
    print(json.dumps({k: v for k, v in result.items() if k != "benchmark"}))
    return 0
