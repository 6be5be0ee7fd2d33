"""`python -m voxlive.bench.serve_models`: what the model server's batching and HTTP cost.

Serves the profile's STT and TTS with `voxlive serve-models`' local runtime in this
process (the same engines and wire as the Ray deployments; Ray adds processes, not a
different path) and measures, in one run on one machine:

- STT under concurrent requests: per concurrency level, the same engine with dynamic
  batching (up to 8 requests, 5 ms wait) and without (batches of 1), taking turns round
  by round: throughput, latency p50/p95, this process's CPU time per request (less
  disturbed by other work on the machine than the wall clock) and the mean batch size.
- TTS over HTTP: time to the first pcm chunk through the `remote` backend, against the
  same piper in process.

A table, or --json. Figures from a shared machine: compare the columns, not the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import numpy as np

from voxlive.bench.latency import percentiles

SENTENCES = (
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Please tell me a short story about a brave little dog.",
    "What time does the train to Berlin leave tomorrow morning?",
)


async def stt_level(url: str, wavs: list[bytes], concurrency: int, waves: int
                    ) -> dict[str, Any]:
    import aiohttp

    from voxlive.backends.stt_remote import multipart
    from voxlive.serving.local_app import BATCH_HEADER

    latencies: list[float] = []
    sizes: list[int] = []

    async def one(http: aiohttp.ClientSession, wav: bytes) -> None:
        body, content_type = multipart({"model": "stt"}, "file", "q.wav", wav, "audio/wav")
        started = time.perf_counter()
        async with http.post(f"{url}/audio/transcriptions", data=body,
                             headers={"Content-Type": content_type}) as r:
            await r.read()
            r.raise_for_status()
            sizes.append(int(r.headers[BATCH_HEADER]))
        latencies.append((time.perf_counter() - started) * 1000)

    started, cpu = time.perf_counter(), time.process_time()
    async with aiohttp.ClientSession() as http:
        for _ in range(waves):
            await asyncio.gather(*[one(http, wavs[i % len(wavs)]) for i in range(concurrency)])
    wall = time.perf_counter() - started
    return {"concurrency": concurrency, "requests": len(latencies), "wall_s": wall,
            "cpu_s": time.process_time() - cpu, "latencies": latencies, "sizes": sizes}


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one level and mode: throughput over their summed time, latency spread."""
    latencies = [ms for r in rounds for ms in r["latencies"]]
    sizes = [n for r in rounds for n in r["sizes"]]
    wall = sum(r["wall_s"] for r in rounds)
    cpu = sum(r["cpu_s"] for r in rounds)
    return {"concurrency": rounds[0]["concurrency"], "requests": len(latencies),
            "per_s": round(len(latencies) / wall, 2), "latency_ms": percentiles(latencies),
            "cpu_ms_per_request": round(cpu / len(latencies) * 1000),
            "mean_batch": round(float(np.mean(sizes)), 2)}


def first_chunk_ms(synthesize: Any, text: str) -> float:
    started = time.perf_counter()
    chunks = synthesize(text)
    next(iter(chunks))
    elapsed = (time.perf_counter() - started) * 1000
    for _ in chunks:  # drain: the next request starts on an idle server
        pass
    return elapsed


async def run(profile: Any, levels: list[int], waves: int, repeats: int) -> dict[str, Any]:
    from voxlive.backends.stt_remote import encode_wav
    from voxlive.backends.tts_remote import RemoteTTS
    from voxlive.config.schema import RemoteTts
    from voxlive.harness.speech import espeak
    from voxlive.serving.config import ServeModelsConfig
    from voxlive.serving.engines import load_engine
    from voxlive.serving.local_app import serving

    engines = {"stt": load_engine("stt", profile), "tts": load_engine("tts", profile)}
    wavs = [encode_wav(espeak(s, 16_000)) for s in SENTENCES]
    stt: dict[str, list[dict[str, Any]]] = {"batched": [], "one_by_one": []}
    modes = {"one_by_one": 1, "batched": 8}
    async with contextlib.AsyncExitStack() as stack:
        urls = {mode: await stack.enter_async_context(serving(
            engines, ServeModelsConfig(stt={"max_batch_size": size, "batch_wait_ms": 5}),
            port=0)) for mode, size in modes.items()}
        await stt_level(urls["batched"], wavs, 1, 1)  # warm
        for level in levels:
            rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
            for _ in range(waves):  # the modes take turns: a machine's load drifts
                for mode, url in urls.items():
                    rounds[mode].append(await stt_level(url, wavs, level, 1))
            for mode in modes:
                stt[mode].append(merge(rounds[mode]))
    async with serving(engines, ServeModelsConfig(), port=0) as url:
        remote = RemoteTTS(RemoteTts(backend="remote", base_url=url, timeout_s=60))
        backend = engines["tts"].backend
        http_ms, local_ms = [], []
        for i in range(repeats):
            text = SENTENCES[i % len(SENTENCES)]
            local_ms.append(await asyncio.to_thread(first_chunk_ms, backend.synthesize, text))
            http_ms.append(await asyncio.to_thread(first_chunk_ms, remote.synthesize, text))
    return {"stt": stt, "tts_first_chunk_ms": {"in_process": percentiles(local_ms),
                                               "remote_http": percentiles(http_ms)},
            "models": {s: e.description for s, e in engines.items()}}


def print_table(result: dict[str, Any]) -> None:
    print(f"models: {result['models']}")
    print("| STT requests at once | one by one: req/s, p50 / p95 ms, CPU ms per request | "
          "batched: req/s, p50 / p95 ms, CPU ms per request, mean batch |")
    print("|---|---|---|")
    for single, batched in zip(result["stt"]["one_by_one"], result["stt"]["batched"],
                               strict=True):
        print(f"| {single['concurrency']} ({single['requests']} requests) | "
              f"{single['per_s']}, {single['latency_ms']['p50']:.0f} / "
              f"{single['latency_ms']['p95']:.0f}, {single['cpu_ms_per_request']} | "
              f"{batched['per_s']}, {batched['latency_ms']['p50']:.0f} / "
              f"{batched['latency_ms']['p95']:.0f}, {batched['cpu_ms_per_request']}, "
              f"{batched['mean_batch']} |")
    tts = result["tts_first_chunk_ms"]
    print("TTS first chunk, ms (p50 / p95): in process "
          f"{tts['in_process']['p50']} / {tts['in_process']['p95']}, through HTTP "
          f"{tts['remote_http']['p50']} / {tts['remote_http']['p95']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voxlive.bench.serve_models",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="models.yaml")
    parser.add_argument("--profile", default="embedded-small")
    parser.add_argument("--levels", default="1,4,8", help="concurrency levels")
    parser.add_argument("--waves", type=int, default=3, help="rounds per level")
    parser.add_argument("--repeats", type=int, default=8, help="TTS first-chunk samples")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from voxlive.config import load_config

    profile = load_config(args.config).profile(args.profile)
    levels = [int(n) for n in args.levels.split(",")]
    result = asyncio.run(run(profile, levels, args.waves, args.repeats))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
