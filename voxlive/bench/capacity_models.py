"""`voxlive bench capacity --mode models`: the shared models alone, N requests at once.

No calls, no audio path: N questions reach the LLM at the same moment, N utterances the
recogniser, and the figures are when each reply's first sentence is ready and when the
whole reply is, with the models shared as before (one request at a time, in the order the
locks give) and shared fairly (voxlive/sched: llama.cpp time-sliced, whisper batched).
Then N sentences reach the voice at once, through the daemon's TTS scheduler: when each
one's first audio came, and the batches the voice made of them (piper: one sentence a
run; Parler: up to its `max_batch`). This is the queueing a caller hears, without the
rest of a turn around it.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import numpy as np

from voxlive.bench.latency import QUESTIONS

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s")


async def _reply(llm: Any, question: str, started: float) -> dict[str, float]:
    text, first = "", float("nan")
    async for piece in llm.stream([{"role": "user", "content": question}]):
        text += piece
        if first != first and _SENTENCE_END.search(text):
            first = time.monotonic() - started
    end = time.monotonic() - started
    if first != first:
        first = end
    return {"first_sentence_s": round(first, 3), "reply_s": round(end, 3),
            "words": len(text.split())}


async def llm_round(llm: Any, n: int) -> list[dict[str, float]]:
    started = time.monotonic()
    return list(await asyncio.gather(*(_reply(llm, QUESTIONS[i % len(QUESTIONS)], started)
                                       for i in range(n))))


def stt_round(stt: Any, audios: list[np.ndarray]) -> dict[str, float]:
    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(len(audios)) as pool:
        done = list(pool.map(lambda a: (stt.recognise(a), time.monotonic() - started), audios))
    return {"last_s": round(max(t for _, t in done), 3),
            "first_s": round(min(t for _, t in done), 3)}


SENTENCES = ("The capital of France is Paris.", "A spider has eight legs.",
             "Water boils at one hundred degrees.", "The sun is a star.")


def tts_round(tts: Any, n: int) -> dict[str, Any]:
    """`n` sentences asked of the voice at the same moment, each from its own thread (as
    calls ask): first audio of each, when the last ended, and the mean batch."""
    from concurrent.futures import ThreadPoolExecutor

    stats = tts.stats
    before = (stats.batches, stats.items)
    started = time.monotonic()

    def speak(text: str) -> tuple[float, float]:
        first = float("nan")
        for _chunk in tts.synthesize(text):
            if first != first:
                first = time.monotonic() - started
        return first, time.monotonic() - started

    with ThreadPoolExecutor(n) as pool:
        done = list(pool.map(speak, [SENTENCES[i % len(SENTENCES)] for i in range(n)]))
    batches = stats.batches - before[0]
    return {"first_audio_s": sorted(round(first, 3) for first, _ in done),
            "last_s": round(max(end for _, end in done), 3),
            "mean_batch": round((stats.items - before[1]) / max(1, batches), 2)}


def run_models_mode(config: Any, profile: str, calls: list[int], repeats: int = 2
                    ) -> dict[str, Any]:
    from voxlive.audio.resample import MODEL_RATE
    from voxlive.backends.loader import load_stage
    from voxlive.harness.speech import espeak
    from voxlive.sched.llm import FairLlamaCpp
    from voxlive.sched.stt import BatchedSTT
    from voxlive.sched.tts import FairTTS

    settings = config.profile(profile)
    llm = load_stage("llm", settings)[0]
    stt = load_stage("stt", settings)[0]
    tts = FairTTS(load_stage("tts", settings)[0])
    llm.config = llm.config.model_copy(update={"temperature": 0.0})  # the same words each time
    variants = {"serial": (llm, stt)}
    if hasattr(llm, "llama"):
        variants["fair"] = (FairLlamaCpp(llm), BatchedSTT(stt) if hasattr(
            stt, "_short") else stt)
    audios = [espeak(q, MODEL_RATE) for q in QUESTIONS]
    asyncio.run(llm_round(llm, 1))  # warm
    stt.recognise(audios[0])
    rows = []
    for n in calls:
        for _ in range(repeats):
            for name, (v_llm, v_stt) in variants.items():
                replies = asyncio.run(llm_round(v_llm, n))
                stats = getattr(v_stt, "stats", None)
                before = (stats.batches, stats.items) if stats else (0, 0)
                heard = stt_round(v_stt, [audios[i % len(audios)] for i in range(n)])
                batches = (stats.batches - before[0], stats.items - before[1]) if stats else (1, 1)
                firsts = sorted(r["first_sentence_s"] for r in replies)
                rows.append({"variant": name, "calls": n,
                             "first_sentence_s": firsts,
                             "reply_s": sorted(r["reply_s"] for r in replies),
                             "stt_last_s": heard["last_s"],
                             "stt_mean_batch": round(batches[1] / max(1, batches[0]), 2)})
            spoken = tts_round(tts, n)  # the daemon's way only: the voice has no other
            rows.append({"variant": "tts", "calls": n, "tts_first_audio_s":
                         spoken["first_audio_s"], "tts_last_s": spoken["last_s"],
                         "tts_mean_batch": spoken["mean_batch"]})
    return {"benchmark": "capacity", "mode": "models", "profile": profile, "rows": rows}


def print_models(result: dict[str, Any]) -> None:
    print(f"shared models, {result['profile']} profile: N requests at the same moment "
          "(seconds; a shared machine: compare variants within this run)")
    print(f"{'variant':8}{'calls':>6}  {'first sentence ready, each reply':36}"
          f"{'last reply done':>16}{'stt all done':>14}{'stt batch':>10}")
    for row in result["rows"]:
        if row["variant"] == "tts":
            firsts = " ".join(f"{t:.2f}" for t in row["tts_first_audio_s"])
            print(f"{'tts':8}{row['calls']:>6}  first audio of each sentence {firsts}; "
                  f"last done {row['tts_last_s']:.2f}; mean batch {row['tts_mean_batch']:.2f}")
            continue
        firsts = " ".join(f"{t:.2f}" for t in row["first_sentence_s"])
        print(f"{row['variant']:8}{row['calls']:>6}  {firsts:36}{max(row['reply_s']):>16.2f}"
              f"{row['stt_last_s']:>14.2f}{row['stt_mean_batch']:>10.2f}")
