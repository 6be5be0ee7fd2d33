"""What the backends' own plumbing costs per request: the `openai` LLM and `remote` STT
clients against the vLLM test double (loopback, no model), and how fast closing a
llama.cpp stream (a barge-in) frees the model.

    python -m voxlive.bench.clients [--requests 100] [--llama 10] [--json]

The double answers at once, so the figures are the clients' own (plus the double's, the
same for any client): wall-clock percentiles, and the process's CPU per request. Compare
two versions within one run of the machine, as ratios; absolute figures move with load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

REPLY = " ".join(f"word{i}" for i in range(40))
MESSAGES = [{"role": "user", "content": "hi"}]
WARM = 5


def _p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


async def openai_clients(requests: int) -> dict[str, float]:
    from tests.doubles.vllm_double import DEFAULT_MODEL, DEFAULT_STT_MODEL, VllmDouble
    from voxlive.backends.base import Transcript
    from voxlive.backends.llm_openai import OpenAIChatLLM
    from voxlive.backends.stt_remote import RemoteSTT
    from voxlive.config import OpenAILlm, RemoteStt

    class FixedStt:  # the double's transcriber: no model, the HTTP round trip alone
        def recognise(self, audio: np.ndarray) -> Transcript:
            return Transcript("hello there", 0.9)

    first, whole, closes, stt = [], [], [], []
    async with VllmDouble(reply=REPLY, stt=FixedStt()) as server:
        llm = OpenAIChatLLM(OpenAILlm(backend="openai", base_url=server.base_url,
                                      model=DEFAULT_MODEL))
        for i in range(requests + WARM):
            if i == WARM:
                cpu = time.process_time()
            started, first_at = time.perf_counter(), None
            async for _ in llm.stream(MESSAGES):
                first_at = first_at or time.perf_counter()
            if i >= WARM:
                first.append((first_at - started) * 1000)
                whole.append((time.perf_counter() - started) * 1000)
        llm_cpu = (time.process_time() - cpu) / requests * 1000
        for _ in range(20):
            stream = llm.stream(MESSAGES)
            await anext(stream)
            started = time.perf_counter()
            await stream.aclose()
            closes.append((time.perf_counter() - started) * 1000)
        await llm.aclose()
        remote = RemoteSTT(RemoteStt(backend="remote", base_url=server.base_url,
                                     model=DEFAULT_STT_MODEL))
        audio = np.zeros(3 * 16_000, np.float32)
        for i in range(requests + WARM):
            if i == WARM:
                cpu = time.process_time()
            started = time.perf_counter()
            await asyncio.to_thread(remote.recognise, audio)
            if i >= WARM:
                stt.append((time.perf_counter() - started) * 1000)
        stt_cpu = (time.process_time() - cpu) / requests * 1000
    return {"openai_first_piece_ms_p50": _p(first, 50), "openai_first_piece_ms_p95": _p(first, 95),
            "openai_40_pieces_ms_p50": _p(whole, 50), "openai_40_pieces_ms_p95": _p(whole, 95),
            "openai_cpu_ms_per_reply": round(llm_cpu, 2), "openai_aclose_ms_p50": _p(closes, 50),
            "remote_stt_3s_ms_p50": _p(stt, 50), "remote_stt_3s_ms_p95": _p(stt, 95),
            "remote_stt_cpu_ms_per_request": round(stt_cpu, 2)}


async def llama_stop(replies: int) -> dict[str, float]:
    """aclose() of a llama.cpp stream three pieces in, at a random moment (a barge-in
    comes whenever the user speaks): until the model is free again."""
    import random

    chance = random.Random(1)
    from voxlive.backends.loader import load_stage
    from voxlive.config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "models.yaml")
    llm, _ = load_stage("llm", config.profile("embedded-small"))
    question = [{"role": "user", "content": "Tell me about the sea in three sentences."}]
    closes = []
    for i in range(replies + 1):
        stream = llm.stream(question)
        for _ in range(3):
            await anext(stream)
        await asyncio.sleep(chance.uniform(0, 0.1))
        started = time.perf_counter()
        await stream.aclose()
        if i:
            closes.append((time.perf_counter() - started) * 1000)
    return {"llama_aclose_ms_p50": _p(closes, 50), "llama_aclose_ms_max": _p(closes, 100)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voxlive.bench.clients",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--llama", type=int, default=10, help="replies to cut (0: skip)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = asyncio.run(openai_clients(args.requests))
    if args.llama:
        figures.update(asyncio.run(llama_stop(args.llama)))
    if args.json:
        print(json.dumps(figures))
    else:
        width = max(map(len, figures))
        for name, value in figures.items():
            print(f"{name:<{width}}  {value:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
