"""`voxlive bench quality`: does the assistant hear right and answer right, briefly?

Over real WebRTC on loopback, against the daemon with the profile's real models, an
aiortc caller (harness/client.py) says the fixed question set of quality_set.py in
espeak-ng voices (accents, speeds, pitches), one call per dialogue: single questions,
numbers, multi-turn memory, a follow-up that talks over a reply (barge-in), and a few
questions in German, Spanish and French. Then, for hearing alone, it says recordings of
real people (harness/real_speech.py's cached corpus) in calls of their own, with a long
end-of-turn silence so a prompt with pauses stays one turn, and hangs up once the
transcript is in.

Per profile it prints: STT word error rate (normalised: scoring.py), synthetic and real
speech apart; answers correct (keywords); reply length in sentences and in spoken
seconds (estimated from words at 2.6 words/s); bookkeeping leaks (must be 0); and
voice-to-voice p50/p95. `--json` prints everything, per dialogue too.

Time is bounded: the last turn of a dialogue hangs up once its answer is written (no
waiting for it to be played), `--limit` takes the first N dialogues, `--real N` N
recordings per corpus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from voxlive.audio.resample import CALL_RATE, MODEL_RATE, resample_once
from voxlive.bench.latency import percentiles
from voxlive.bench.quality_set import DIALOGUES, Dialogue, voice_for
from voxlive.bench.scoring import answers, leaks, sentence_count, word_errors
from voxlive.models import load_or_explain
from voxlive.turn.prompts import chat_template_in_use, family_of, model_names

WORDS_PER_SECOND = 2.6
WAIT_S = 90.0  # one reply on a busy 2-core machine, with margin
BARGE_AFTER_S = 1.0


def _fatal(e: dict[str, Any]) -> bool:
    """An error that ends the turn without a reply. The turn detector's is not: the turn
    goes on under the silence rule (on a loaded machine it timed out in 13 of 32
    dialogues, which the bench used to count as unanswered)."""
    return e["type"] == "error" and e.get("stage") != "turn_detector"


def _final_reply(e: dict[str, Any], skip: set[int]) -> bool:
    return _fatal(e) or (
        e["type"] == "assistant_text" and e["final"] and e["turn"] not in skip)


def _heard_nothing(events: list[dict[str, Any]], mark: int, skip: set[int]
                   ) -> dict[str, Any] | None:
    """The turn committed since `mark` that ended with the daemon listening again and no
    reply: its words were no words (a noise, or Whisper's "Thank you for watching" on a
    language it cannot hear), so nothing is said."""
    committed = None
    for event in events[mark:]:
        if event["type"] == "turn_committed" and event["turn"] not in skip:
            committed = event
        elif event["type"] == "assistant_text" and committed is not None \
                and event["turn"] == committed["turn"]:
            return None
        elif event["type"] == "state" and event["state"] == "listening" and committed:
            return committed
    return None


async def _turn(client: Any, audio: np.ndarray, skip: set[int], last: bool) -> dict[str, Any]:
    """Say `audio`, wait for the written reply (and, unless `last`, for it to be played)."""
    mark = len(client.events)
    client.mic.say(audio)
    done = await client.wait_for(
        lambda e: _final_reply(e, skip) or (e["type"] == "state" and _heard_nothing(
            client.events, mark, skip) is not None), WAIT_S, mark)
    if done["type"] == "error":
        return {"error": f"{done.get('stage')}: {done['message']}", "reply": "", "heard": ""}
    if done["type"] == "state":
        dropped = _heard_nothing(client.events, mark, skip)
        assert dropped is not None
        return {"turn": dropped["turn"], "heard": "", "reply": "", "voice_to_voice_ms": None}
    turn = done["turn"]
    latency = None
    with contextlib.suppress(TimeoutError):  # a reply with no words has no audio
        event = await client.wait_for(
            lambda e: e["type"] == "turn_latency" and e["turn"] == turn, 10 if done["text"]
            else 0.5, mark)
        latency = event["voice_to_voice_ms"]
    if not last:
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              WAIT_S, client.events.index(done))
    heard = " ".join(e["text"] for e in client.events[mark:]
                     if e["type"] == "user_transcript" and e["turn"] == turn)
    return {"turn": turn, "heard": heard, "reply": done["text"],
            "voice_to_voice_ms": latency}


async def run_dialogue(url: str, index: int, dialogue: Dialogue) -> dict[str, Any]:
    """One call: the dialogue's turns in order; the last reply is scored."""
    from voxlive.harness.client import CallClient
    from voxlive.harness.speech import espeak

    voice = voice_for(index, dialogue.language)
    audio = [espeak(t, CALL_RATE, voice.words_per_minute, voice.pitch, voice.voice)
             for t in dialogue.turns]
    client = CallClient(url)
    await client.connect()
    turns: list[dict[str, Any]] = []
    skip: set[int] = set()
    interrupted = None
    try:
        for k, text in enumerate(dialogue.turns):
            last = k == len(dialogue.turns) - 1
            if dialogue.kind == "barge_in" and k == 0:
                mark = len(client.events)
                client.mic.say(audio[k])
                speaking = await client.wait_for(
                    lambda e: _fatal(e) or e["type"] == "state"
                    and e["state"] == "speaking", WAIT_S, mark)
                skip = {e["turn"] for e in client.events[mark:] if "turn" in e}
                turns.append({"said": text, "heard": " ".join(
                    e["text"] for e in client.events[mark:] if e["type"] == "user_transcript"),
                    "reply": "", "voice_to_voice_ms": None,
                    "error": speaking.get("message")})
                await asyncio.sleep(BARGE_AFTER_S)
                continue
            result = await _turn(client, audio[k], skip, last)
            turns.append({"said": text, **result})
            skip.add(result.get("turn", -1))
        if dialogue.kind == "barge_in":
            interrupted = any(e["type"] == "interrupted" for e in client.events)
    finally:
        await client.close()
    final = turns[-1]
    correct = answers(final["reply"], dialogue.answers)
    return {
        "name": dialogue.name, "kind": dialogue.kind, "language": dialogue.language,
        "voice": voice.__dict__, "turns": turns, "reply": final["reply"],
        "correct": correct,
        "miss": None if correct else miss_cause(dialogue, turns),
        "sentences": sentence_count(final["reply"]),
        "spoken_s_est": round(len(final["reply"].split()) / WORDS_PER_SECOND, 2),
        "leak": any(leaks(t["reply"]) for t in turns),
        "error": next((t["error"] for t in turns if t.get("error")), None),
        **({"interrupted": interrupted} if interrupted is not None else {}),
    }


def miss_cause(dialogue: Dialogue, turns: list[dict[str, Any]]) -> str:
    """Why an answer was wrong, as far as the events tell: `error` (a stage failed or
    timed out), `heard no words` (the turn's transcript was empty, so nothing was said),
    `no reply`, `wrong language` (a de/es/fr turn heard as mostly other
    words), `misheard` (some turn's words heard wrong), else `llm` (heard word for word,
    answered wrong). A too strict keyword or a reply cut by the length policy shows in
    the reply and is judged by reading it. (`measure` marks a miss `asked again` where
    the assistant asked to hear the question again: turn.ask_again_below.)"""
    if any(t.get("error") for t in turns):
        return "error"
    if not turns[-1]["reply"]:
        return "heard no words" if not turns[-1]["heard"] else "no reply"
    counts = [word_errors(t["said"], t["heard"], dialogue.language) for t in turns
              if t["said"]]
    if dialogue.language != "en" and any(e > w / 2 for e, w in counts):
        return "wrong language"
    return "misheard" if any(e for e, _ in counts) else "llm"


async def hear_recording(url: str, item: Any) -> dict[str, Any]:
    """One call that says one recording and hangs up once it is transcribed."""
    from voxlive.harness.client import CallClient

    client = CallClient(url)
    await client.connect()
    try:
        pad = np.zeros(int(0.3 * CALL_RATE), np.float32)
        client.mic.say(np.concatenate([pad, resample_once(item.audio, MODEL_RATE, CALL_RATE)]))
        heard = ""
        with contextlib.suppress(TimeoutError):
            event = await client.wait_for(lambda e: e["type"] == "user_transcript",
                                          item.seconds + 30)
            heard = event["text"]
    finally:
        await client.close()
    return {"source": item.source, "language": item.language, "seconds": round(item.seconds, 2),
            "reference": item.text, "heard": heard}


def _hearing_config(config: Any) -> Any:
    """The daemon's settings for hearing recordings: pauses inside a prompt do not end
    the turn (this measures the recogniser, not endpointing)."""
    turn = config.turn.model_copy(update={"speculative_silence_ms": 1500,
                                          "end_of_turn_silence_ms": 1500})
    return config.model_copy(update={"turn": turn})


async def measure(config: Any, profile_name: str, models: Any,
                  dialogues: Sequence[Dialogue], recordings: Sequence[Any] = (),
                  ) -> dict[str, Any]:
    from voxlive.server.app import Daemon, running

    started = time.monotonic()
    results, heard = [], []
    async with running(Daemon(config, profile_name, models, host="127.0.0.1")) as url:
        for i, dialogue in enumerate(dialogues):
            result = await run_dialogue(url, DIALOGUES.index(dialogue)
                                        if dialogue in DIALOGUES else i, dialogue)
            if result["miss"] and result["reply"].strip() == config.assistant.ask_again:
                result["miss"] = "asked again"  # the words were not made out, and it said so
            results.append(result)
            print(f"{dialogue.name:18} {'ok ' if result['correct'] else 'BAD'} "
                  f"{result['turns'][-1]['heard']!r} -> {result['reply'][:70]!r}",
                  file=sys.stderr)
    if recordings:
        async with running(Daemon(_hearing_config(config), profile_name, models,
                                  host="127.0.0.1")) as url:
            for item in recordings:
                heard.append(await hear_recording(url, item))
                print(f"{item.source:28} {heard[-1]['heard'][:60]!r}", file=sys.stderr)
    return summarise(config, profile_name, models, results, heard,
                     time.monotonic() - started)


def _wer_groups(results: list[dict[str, Any]], heard: list[dict[str, Any]]
                ) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for r in results:
        key = "synthetic_en" if r["language"] == "en" else "synthetic_de_es_fr"
        for t in r["turns"]:
            groups.setdefault(key, []).append((t["said"], t["heard"], r["language"]))
    for h in heard:
        corpus = h["source"].split(":")[0]
        groups.setdefault(f"real_{corpus}", []).append((h["reference"], h["heard"],
                                                        h["language"]))
    out = {}
    for key, pairs in groups.items():
        counts = [word_errors(ref, hyp, lang) for ref, hyp, lang in pairs]
        words = sum(w for _, w in counts)
        out[key] = {"utterances": len(pairs), "words": words,
                    "wer": round(sum(e for e, _ in counts) / words, 3) if words else None}
    return out


def summarise(config: Any, profile_name: str, models: Any, results: list[dict[str, Any]],
              heard: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    n = len(results)
    kinds = sorted({r["kind"] for r in results})
    sentences = [r["sentences"] for r in results if r["reply"]]
    seconds = [r["spoken_s_est"] for r in results if r["reply"]]
    latencies = [t["voice_to_voice_ms"] for r in results for t in r["turns"]
                 if t.get("voice_to_voice_ms") is not None]
    llama = getattr(models.llm, "llama", None)
    # The LLM's share apart from the recogniser's: answers to questions heard word for word.
    clean = [r for r in results if r["turns"][-1]["heard"]
             and word_errors(r["turns"][-1]["said"], r["turns"][-1]["heard"], r["language"])[0]
             == 0]
    return {
        "benchmark": "quality",
        "profile": profile_name,
        "models": {s: getattr(models, s).description for s in ("vad", "stt", "llm", "tts")},
        "machine": {"cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "assistant": config.assistant.model_dump(),
        "prompt_family": family_of(model_names(models.llm)),
        "chat_template": chat_template_in_use(llama) if llama is not None else "server",
        "dialogues": n,
        "correct": sum(r["correct"] for r in results),
        "correct_rate": round(sum(r["correct"] for r in results) / n, 3) if n else None,
        "heard_right": len(clean),
        "correct_when_heard_right": round(sum(r["correct"] for r in clean) / len(clean), 3)
        if clean else None,
        "misses": {cause: sum(r.get("miss") == cause for r in results)
                   for cause in sorted({r["miss"] for r in results if r.get("miss")})},
        "by_kind": {k: {"dialogues": sum(r["kind"] == k for r in results),
                        "correct": sum(r["correct"] for r in results if r["kind"] == k)}
                    for k in kinds},
        "reply_sentences": {"mean": _mean(sentences), "max": max(sentences, default=None),
                            "at_most_two_rate": round(sum(s <= 2 for s in sentences)
                                                      / len(sentences), 3)
                            if sentences else None},
        "reply_seconds_est": percentiles(seconds),
        "empty_replies": sum(not r["reply"] for r in results),
        "leaks": sum(r["leak"] for r in results),
        "errors": sum(r["error"] is not None for r in results),
        "stt_wer": _wer_groups(results, heard),
        "voice_to_voice_ms": percentiles(latencies),
        "wall_s": round(wall_s, 1),
        "per_dialogue": results,
        "per_recording": heard,
    }


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 2) if values else None


def print_table(result: dict[str, Any]) -> None:
    r = result
    print(f"quality, profile {r['profile']}: {r['models']['stt']} | {r['models']['llm']} | "
          f"{r['models']['tts']} ({r['machine']['cpus']} CPUs, {r['wall_s']} s)")
    budget = r["assistant"]
    print(f"prompt {r['prompt_family']}, chat template {r['chat_template']}, at most "
          f"{budget.get('max_sentences', '-')} sentences / {budget.get('max_spoken_s', '-')} s")
    rows = [
        ("answers correct", f"{r['correct']}/{r['dialogues']} ({_pct(r['correct_rate'])})"),
        *[(f"  {k}", f"{v['correct']}/{v['dialogues']}") for k, v in r["by_kind"].items()],
        ("misses by cause", ", ".join(f"{k} {v}" for k, v in r.get("misses", {}).items())
         or "none"),
        ("  of questions heard right", f"{_pct(r['correct_when_heard_right'])} "
         f"({r['heard_right']} heard word for word)"),
        ("replies <= 2 sentences", _pct(r["reply_sentences"]["at_most_two_rate"])),
        ("reply sentences mean/max",
         f"{r['reply_sentences']['mean']} / {r['reply_sentences']['max']}"),
        ("reply spoken s p50/p95 (est)",
         f"{r['reply_seconds_est']['p50']} / {r['reply_seconds_est']['p95']}"),
        ("empty replies", str(r["empty_replies"])),
        ("bookkeeping leaks", str(r["leaks"])),
        ("errors", str(r["errors"])),
        *[(f"STT WER {k}", f"{_pct(v['wer'])} ({v['utterances']} utt.)")
          for k, v in sorted(r["stt_wer"].items())],
        ("voice-to-voice ms p50/p95",
         f"{r['voice_to_voice_ms']['p50']} / {r['voice_to_voice_ms']['p95']}"),
    ]
    for name, value in rows:
        print(f"{name:30} {value}")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f} %"


def load_recordings(per_source: int) -> list[Any]:
    """Up to `per_source` recordings of 1-12 s from each corpus, or none (with a note)."""
    if per_source <= 0:
        return []
    from voxlive.harness import real_speech

    try:
        return list(real_speech.items(min_seconds=1.0, max_seconds=12.0,
                                      per_source=per_source))
    except real_speech.CorpusError as exc:
        print(f"voxlive bench quality: no real speech ({exc})", file=sys.stderr)
        return []


def run_quality_bench(config: Any, profile_name: str | None, limit: int | None,
                      real: int, as_json: bool) -> int:
    from voxlive.harness.speech import have_espeak
    if not have_espeak():
        print("voxlive bench quality: espeak-ng is needed to say the questions "
              "(Debian: apt-get install espeak-ng)", file=sys.stderr)
        return 2
    if limit is not None and not 1 <= limit <= len(DIALOGUES):
        print(f"voxlive bench quality: --limit must be 1..{len(DIALOGUES)}", file=sys.stderr)
        return 2
    name, models = load_or_explain(config, profile_name)
    recordings = load_recordings(real)
    result = asyncio.run(measure(config, name, models, DIALOGUES[:limit], recordings))
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print_table(result)
    return 0
