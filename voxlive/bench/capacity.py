"""`voxlive bench capacity`: how many calls one core carries, and where it stops.

The daemon runs in its own process pinned to one core (bench/capacity_server.py); this
process, on another core, ramps simulated callers (bench/capacity_calls.py) level by
level and prints per level: calls, voice-to-voice p50/p95, the first-audio wait due to
queueing for the shared models, outgoing audio gaps (seen by the daemon's sender and by
the callers), CPU and RSS per call, event-loop lag, mean STT/TTS batch sizes, and the
knee: the first level that misses real time, gaps, or (talk mode) doubles the p95.

Modes: `listen` is the audio path alone (quiet noise in, no turns: the issue's table);
`talk` is conversations (questions with pauses, replies, some barge-ins).
`--compare` runs a second daemon with the fixes off (VOXLIVE_LEGACY_AUDIO=1,
VOXLIVE_FAIR_SCHED=0) on the same core and interleaves the two level by level, so a
shared, noisy machine weighs on both alike: compare ratios within one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voxlive.bench.capacity_calls import CallResult, listen_call, talk_call
from voxlive.bench.capacity_server import ServerProcess
from voxlive.bench.cpu_ticks import read_ticks, shares
from voxlive.bench.latency import QUESTIONS, percentiles

MAX_CALLS = 64
MAX_HOLD_S = 300.0
MAX_TOTAL_S = 3600.0
LEGACY_ENV = {"VOXLIVE_LEGACY_AUDIO": "1", "VOXLIVE_FAIR_SCHED": "0"}
BATCH_STAGES = ("stt", "llm", "tts")
STEAL_WARNING = 0.05


@dataclass
class Level:
    variant: str
    calls: int
    connected: int = 0
    failed: int = 0
    cpu_cores: float = 0.0
    cpu_per_call: float = 0.0
    rss_mb: float = 0.0
    rss_per_call_mb: float = 0.0
    rss_growth_mb: float = 0.0  # during the hold
    rss_late_growth_mb: float = 0.0  # during its last half (input rings full past 35 s)
    loop_lag_ms: float = 0.0
    server_gaps_over_60ms: int = 0  # while the calls held (after their set-up)
    server_max_gap_ms: float = 0.0
    setup_gaps_over_60ms: int = 0  # while they connected and hung up
    gc_max_pause_ms: float = 0.0  # the longest collection so far in the daemon
    gc_gen2: int = 0  # full collections during the level
    client_gaps_over_60ms: int = 0
    client_max_gap_ms: float = 0.0
    realtime: float = 0.0
    turns: int = 0
    barge_ins: int = 0
    errors: int = 0
    v2v_p50_ms: float = float("nan")
    v2v_p95_ms: float = float("nan")
    first_audio_queue_ms: float = float("nan")  # mean per turn, summed over the stages
    mean_batch: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    steal: float = float("nan")  # share of the daemon's core the hypervisor took (hold)
    callers_busy: float = float("nan")  # how busy the callers' cores were (hold)


def _delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


async def run_level(server: ServerProcess, mode: str, calls: int, hold_s: float,
                    questions: list[np.ndarray], idle_rss: float) -> Level:
    level = Level(server.name, calls)
    warm_s = 3.0
    before = await server.metrics()
    if mode == "listen":
        barrier = asyncio.Barrier(calls + 1)
        tasks = [asyncio.ensure_future(listen_call(server.url, hold_s, warm_s, seed, barrier))
                 for seed in range(calls)]
        await asyncio.wait_for(barrier.wait(), timeout=30 + calls)
    else:
        tasks = [asyncio.ensure_future(talk_call(server.url, questions, hold_s, seed,
                                                 start_delay_s=seed * 0.1 % 1.0))
                 for seed in range(calls)]
    await asyncio.sleep(warm_s)
    held = await server.metrics()
    cpu0, rss0, t0 = server.cpu_seconds(), server.rss_mb(), time.monotonic()
    daemon_cores = None if server.core is None else {server.core}
    callers_cores = None if server.core is None else os.sched_getaffinity(0)
    daemon_ticks0, callers_ticks0 = read_ticks(daemon_cores), read_ticks(callers_cores)
    await asyncio.sleep(hold_s * 0.45)
    rss_mid = server.rss_mb()
    await asyncio.sleep(hold_s * 0.45)
    cpu1, rss1, t1 = server.cpu_seconds(), server.rss_mb(), time.monotonic()
    _, level.steal = shares(read_ticks(daemon_cores), daemon_ticks0)
    if callers_cores is not None:
        level.callers_busy, _ = shares(read_ticks(callers_cores), callers_ticks0)
    during = await server.metrics()
    results: list[CallResult] = await asyncio.gather(*tasks)
    after = await server.metrics()
    level.connected = sum(r.connected for r in results)
    level.failed = calls - level.connected
    level.problems = sorted({r.error for r in results if r.error})[:3]
    level.cpu_cores = round((cpu1 - cpu0) / (t1 - t0), 3)
    level.cpu_per_call = round(level.cpu_cores / max(1, level.connected), 3)
    level.rss_mb = round(rss1, 1)
    level.rss_per_call_mb = round((rss1 - idle_rss) / max(1, level.connected), 2)
    level.rss_growth_mb = round(rss1 - rss0, 1)
    level.rss_late_growth_mb = round(rss1 - rss_mid, 1)
    level.loop_lag_ms = round(during.get("loop_lag_seconds", 0.0) * 1000, 1)
    gaps = "output_gaps_over_60ms_total"
    level.server_gaps_over_60ms = int(_delta(during, held, gaps))
    level.setup_gaps_over_60ms = int(_delta(after, before, gaps)) - level.server_gaps_over_60ms
    level.gc_max_pause_ms = round(after.get("gc_max_pause_seconds", 0.0) * 1000, 1)
    level.gc_gen2 = int(_delta(after, before, "gc_collections_gen2"))
    level.server_max_gap_ms = round(during.get("output_max_gap_seconds", 0.0) * 1000, 1)
    ok = [r for r in results if r.connected and not r.error]
    level.client_gaps_over_60ms = sum(r.gaps_over_60ms for r in ok)
    level.client_max_gap_ms = max((r.max_gap_ms for r in ok), default=0.0)
    level.realtime = round(min((r.realtime for r in ok), default=float("nan")), 3)
    v2v = [t["voice_to_voice_ms"] for r in ok for t in r.turns]
    level.turns, level.barge_ins = len(v2v), sum(r.barge_ins for r in ok)
    level.errors = sum(r.errors for r in ok)
    if v2v:
        stats = percentiles(v2v)
        level.v2v_p50_ms, level.v2v_p95_ms = stats["p50"], stats["p95"]
        waited = sum(_delta(after, before, f"sched_{s}_first_wait_seconds")
                     for s in BATCH_STAGES)
        level.first_audio_queue_ms = round(waited * 1000 / len(v2v), 1)
    for stage in BATCH_STAGES:
        batches = _delta(after, before, f"sched_{stage}_batches")
        if batches:
            level.mean_batch[stage] = round(
                _delta(after, before, f"sched_{stage}_items") / batches, 2)
    return level


def knee(levels: list[Level], mode: str) -> dict[str, Any]:
    """The first level that fails: not real time, gaps over 60 ms, a saturated core,
    failed calls, or (talk) a p95 over twice the first level's."""
    base = levels[0].v2v_p95_ms if levels else float("nan")
    for level in levels:
        why = []
        if level.failed:
            why.append(f"{level.failed} calls failed")
        if level.server_gaps_over_60ms or level.client_gaps_over_60ms:
            why.append(f"audio gaps (daemon {level.server_gaps_over_60ms}, "
                       f"callers {level.client_gaps_over_60ms})")
        if level.realtime < 0.98:
            why.append(f"{level.realtime} of real time")
        if level.cpu_cores >= 0.95:
            why.append(f"core saturated ({level.cpu_cores})")
        if mode == "talk" and base == base and level.v2v_p95_ms > 2 * base:
            why.append(f"p95 {level.v2v_p95_ms:.0f} ms > 2x {base:.0f} ms")
        if why and level.steal >= STEAL_WARNING:
            why.append(f"but the hypervisor took {level.steal:.0%} of the daemon's core "
                       "(steal): rerun before reading this level")
        if why and level.callers_busy >= 0.97:
            why.append(f"and the callers' cores were saturated ({level.callers_busy:.2f})")
        if why:
            return {"calls": level.calls, "why": why}
    return {"calls": None, "why": ["no level failed"]}


def print_levels(mode: str, levels: list[Level], knees: dict[str, Any],
                 core: int | None = 0) -> None:
    pinned = "not pinned" if core is None else f"pinned to core {core}"
    print(f"capacity, {mode} mode (the daemon {pinned}; compare variants within one run)")
    head = (f"{'variant':8}{'calls':>6}{'core':>7}{'core/c':>7}{'MB/c':>6}{'grow':>6}"
            f"{'lag ms':>7}{'gaps d/c/setup':>15}{'max gap':>8}{'rt':>6}{'gc ms':>6}"
            f"{'steal':>6}")
    if mode == "talk":
        head += f"{'turns':>6}{'v2v p50':>8}{'p95':>7}{'queue':>7}  batch stt/llm/tts"
    print(head)
    for v in levels:
        line = (f"{v.variant:8}{v.calls:>6}{v.cpu_cores:>7.2f}{v.cpu_per_call:>7.3f}"
                f"{v.rss_per_call_mb:>6.2f}{v.rss_growth_mb:>6.1f}{v.loop_lag_ms:>7.0f}"
                f"{f'{v.server_gaps_over_60ms}/{v.client_gaps_over_60ms}/{v.setup_gaps_over_60ms}':>15}"
                f"{max(v.server_max_gap_ms, v.client_max_gap_ms):>8.0f}{v.realtime:>6.2f}"
                f"{v.gc_max_pause_ms:>6.0f}{v.steal:>6.2f}")
        if mode == "talk":
            batches = "/".join(f"{v.mean_batch.get(s, 0):.2f}" for s in BATCH_STAGES)
            line += (f"{v.turns:>6}{v.v2v_p50_ms:>8.0f}{v.v2v_p95_ms:>7.0f}"
                     f"{v.first_audio_queue_ms:>7.0f}  {batches}")
        if v.failed:
            line += f"  failed {v.failed}: {v.problems}"
        print(line)
    for variant, k in knees.items():
        print(f"knee ({variant}): {k['calls'] or 'not reached'}: {'; '.join(k['why'])}")


async def ramp(config: Any, profile: str, mode: str, levels: list[int], hold_s: float,
               compare: bool, core: int | None) -> dict[str, Any]:
    variants = {"fixed": {}, **({"legacy": LEGACY_ENV} if compare else {})}
    questions = _questions(mode)
    servers = {name: ServerProcess(config, profile, max(levels) + 4, core, env, name)
               for name, env in variants.items()}
    started = time.monotonic()
    results: list[Level] = []
    try:
        for server in servers.values():
            await server.wait_ready()
        await asyncio.sleep(2.0)
        idle = {name: s.rss_mb() for name, s in servers.items()}
        for calls in levels:
            for name, server in servers.items():
                if time.monotonic() - started > MAX_TOTAL_S:
                    print("capacity: time bound reached", file=sys.stderr)
                    break
                level = await run_level(server, mode, calls, hold_s, questions, idle[name])
                results.append(level)
                print(f"{name} {calls} calls: {level.cpu_cores:.2f} core, gaps "
                      f"{level.server_gaps_over_60ms}/{level.client_gaps_over_60ms}, "
                      f"v2v p95 {level.v2v_p95_ms}, steal {level.steal}, "
                      f"callers busy {level.callers_busy}", file=sys.stderr)
                await _drain(server)
    finally:
        for server in servers.values():
            server.stop()
    knees = {name: knee([v for v in results if v.variant == name], mode) for name in servers}
    return {"benchmark": "capacity", "mode": mode, "profile": profile, "hold_s": hold_s,
            "server_core": core, "cpus": os.cpu_count(),
            "levels": [asdict(v) for v in results], "knee": knees,
            "seconds": round(time.monotonic() - started, 1)}


async def _drain(server: ServerProcess, timeout_s: float = 20.0) -> None:
    """Wait for the level's calls to be gone before the next level starts."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and await server.live_calls():
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)


def _questions(mode: str) -> list[np.ndarray]:
    if mode != "talk":
        return []
    from voxlive.audio.resample import CALL_RATE
    from voxlive.harness.speech import espeak, have_espeak, silence

    if not have_espeak():
        raise RuntimeError("talk mode speaks its questions with espeak-ng (Debian package)")
    return [np.concatenate([espeak(q, CALL_RATE), silence(0.8, CALL_RATE)]) for q in QUESTIONS]


def pin_callers(server_core: int | None) -> None:
    """The callers run on every core but the daemon's."""
    cores = os.sched_getaffinity(0)
    others = cores - {server_core} if server_core is not None else cores
    if others:
        os.sched_setaffinity(0, others)


def run_capacity_bench(config: Any, profile: str | None, mode: str, levels: list[int],
                       hold_s: float, compare: bool, server_core: int | None,
                       as_json: bool) -> int:
    if mode not in ("listen", "talk", "models"):
        print("voxlive bench capacity: --mode is listen, talk or models", file=sys.stderr)
        return 2
    if not levels or min(levels) < 1 or max(levels) > MAX_CALLS:
        print(f"voxlive bench capacity: levels between 1 and {MAX_CALLS} calls",
              file=sys.stderr)
        return 2
    if not 2 <= hold_s <= MAX_HOLD_S:
        print(f"voxlive bench capacity: --hold between 2 and {MAX_HOLD_S:g} s",
              file=sys.stderr)
        return 2
    if server_core is not None and server_core not in os.sched_getaffinity(0):
        print(f"voxlive bench capacity: no core {server_core} here", file=sys.stderr)
        return 2
    name = profile or config.default_profile
    if mode == "models":
        from voxlive.bench.capacity_models import print_models, run_models_mode

        models_result = run_models_mode(config, name, sorted(set(levels)))
        if as_json:
            print(json.dumps(models_result, indent=2))
        else:
            print_models(models_result)
        return 0
    pin_callers(server_core)
    result = asyncio.run(ramp(config, name, mode, sorted(set(levels)), hold_s, compare,
                              server_core))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_levels(mode, [Level(**v) for v in result["levels"]], result["knee"],
                     server_core)
    return 0
