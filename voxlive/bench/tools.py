"""`voxlive bench tools`: what a tool round adds to a turn, and how soon the filler speaks.

Over real WebRTC on loopback, the same spoken question ("What time is it in Paris?") is
asked, one new call per question, of three daemons that share the profile's models:

  plain   no tools offered: the LLM answers at once (a plain turn);
  tool    the example MCP server (voxlive/tools/examples/clock_notes.py, over stdio) is
          offered; the LLM calls `current_time`, the answer comes from a second LLM pass;
  filler  the same with filler_after_s = 0: the filler is the turn's first sound.

It prints p50/p95 of voice-to-voice per variant; tool minus plain is the added latency of a
tool round (the LLM's tool-call decision, the MCP call, the second LLM pass), and the filler
variant's voice-to-voice is the filler's time to first audio. The LLM is an OpenAI-compatible
server with tool calling: `--llm-url` (vLLM with --enable-auto-tool-choice), or, from a
checkout, the vLLM TEST DOUBLE of tests/doubles (no model runs: it calls the tool whenever
it is offered, so its figures are voxlive's own overhead, not a model's decision time).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import sys
from typing import Any

from voxlive.bench.latency import one_turn, percentiles

QUESTION = "What time is it in Paris?"
PLAIN_REPLY = "In Paris it is late in the morning on a Monday in November."
VARIANTS = ("plain", "tool", "filler")
METRICS = ("voice_to_voice_ms", "stt_ms", "llm_first_token_ms", "transcript_to_audio_ms")


def _double_reply(messages: list[dict[str, Any]]) -> str:
    results = [m["content"] for m in messages[-2:] if m.get("role") == "tool"]
    return " ".join(results) if results else PLAIN_REPLY


def _double_script(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[Any]:
    if messages[-1]["role"] != "user":
        return []
    return [("current_time", {"timezone": "Europe/Paris"})]


async def _llm_server(url: str | None, stack: contextlib.AsyncExitStack) -> tuple[str, str, str]:
    """(base_url, model, what it is)."""
    if url is not None:
        return url, os.environ.get("VOXLIVE_BENCH_MODEL", "default"), f"OpenAI-compatible {url}"
    try:
        from tests.doubles.vllm_double import DEFAULT_MODEL, VllmDouble
    except ImportError:
        raise SystemExit("voxlive bench tools: pass --llm-url (vLLM started with "
                         "--enable-auto-tool-choice), or run from a checkout, where the "
                         "vLLM test double in tests/doubles stands in") from None
    double = await stack.enter_async_context(
        VllmDouble(reply=_double_reply, tool_script=_double_script))
    return double.base_url, DEFAULT_MODEL, "vLLM TEST DOUBLE (no model runs)"


async def measure(config: Any, profile_name: str, turns: int, llm_url: str | None
                  ) -> dict[str, Any]:
    from voxlive.backends.loader import load_models
    from voxlive.config import parse_config
    from voxlive.server.app import Daemon, running
    from voxlive.tools.config import ToolSettings
    from voxlive.tools.mcp_client import ToolManager

    async with contextlib.AsyncExitStack() as stack:
        base_url, model, llm_kind = await _llm_server(llm_url, stack)
        data = config.model_dump()
        profile = data["profiles"][profile_name]
        profile["llm"] = {"backend": "openai", "base_url": base_url, "model": model}
        profile["tools"] = None
        data["tools"] = ToolSettings().model_dump()
        bench_config = parse_config(data)
        models = load_models(bench_config.profile(profile_name), progress=False)
        stack.push_async_callback(models.aclose)
        server = {"name": "clock", "command": ["python", "-m",
                                               "voxlive.tools.examples.clock_notes"]}
        variant_models = {"plain": models}
        for name, after in (("tool", 30.0), ("filler", 0.0)):
            manager = ToolManager(ToolSettings(servers=[server], filler_after_s=after))
            stack.push_async_callback(manager.aclose)
            problems = await manager.connect()
            if problems:
                raise SystemExit(f"voxlive bench tools: {problems[0]}")
            variant_models[name] = dataclasses.replace(models, tools=manager)
        urls = {name: await stack.enter_async_context(running(Daemon(
                    bench_config, profile_name, m, host="127.0.0.1")))
                for name, m in variant_models.items()}
        reports: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
        for i in range(turns):
            for name in VARIANTS:  # interleaved: load on the machine weighs on all alike
                report = await one_turn(urls[name], models, QUESTION)
                if report is None:
                    print(f"{name} turn {i + 1}: no spoken reply", file=sys.stderr)
                    continue
                reports[name].append(report)
                print(f"{name} turn {i + 1}/{turns}: {report['voice_to_voice_ms']:.0f} ms "
                      f"-> {report['reply'][:70]!r}", file=sys.stderr)
    for report in (r for rs in reports.values() for r in rs):
        report["transcript_to_audio_ms"] = round(
            report["first_sentence_ms"] + report["tts_first_audio_ms"], 1)
    summary = {metric: {name: percentiles([r[metric] for r in reports[name]])
                        for name in VARIANTS} for metric in METRICS}
    reply = summary["transcript_to_audio_ms"]
    added = {stat: round(reply["tool"][stat] - reply["plain"][stat], 1)
             for stat in ("p50", "p95")}
    return {
        "benchmark": "tool_round_latency",
        "profile": profile_name,
        "llm": llm_kind,
        "mcp_server": "voxlive.tools.examples.clock_notes (stdio)",
        "machine": {"cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "turns": {name: len(reports[name]) for name in VARIANTS},
        "summary": summary,
        "tool_round_added_ms": added,
        "tool_to_plain_p50_ratio": (round(reply["tool"]["p50"] / reply["plain"]["p50"], 3)
                                    if reply["plain"]["p50"] else float("nan")),
        "filler_first_audio_ms": reply["filler"],
        "per_turn": reports,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"tool round latency, profile {result['profile']}, LLM: {result['llm']}, "
          f"{result['machine']['cpus']} CPUs, turns {result['turns']}")
    print("transcript_to_audio: from the user's transcript to the turn's first audio queued "
          "(the tool round, without STT's noise); llm_first_token: to the first spoken token")
    print(f"{'metric':24} {'variant':8} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    for metric, variants in result["summary"].items():
        for name, stats in variants.items():
            print(f"{metric.removesuffix('_ms'):24} {name:8} {stats['p50']:9.1f} "
                  f"{stats['p95']:9.1f} {stats['mean']:9.1f}")
    added = result["tool_round_added_ms"]
    print(f"added by a tool round (transcript to audio, tool - plain): p50 {added['p50']} ms, "
          f"p95 {added['p95']} ms; tool/plain p50 ratio {result['tool_to_plain_p50_ratio']}")
    filler = result["filler_first_audio_ms"]
    print(f"filler's time to first audio (transcript to audio): p50 {filler['p50']} ms, "
          f"p95 {filler['p95']} ms")


def run_tools_bench(config: Any, profile_name: str | None, turns: int, llm_url: str | None,
                    as_json: bool) -> int:
    if turns < 1 or turns > 100:
        print("voxlive bench: --turns must be between 1 and 100", file=sys.stderr)
        return 2
    name = profile_name or config.default_profile
    config.profile(name)  # a clear error for an unknown profile
    result = asyncio.run(measure(config, name, turns, llm_url))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
        print(json.dumps({k: result[k] for k in ("summary", "tool_round_added_ms",
                                                  "filler_first_audio_ms")}))
    return 0
