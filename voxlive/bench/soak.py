"""`voxlive bench soak`: does anything grow across calls? And the daemon under load.

One process holds the daemon and its aiortc callers (loopback). Phase 1: N call cycles
(connect, talk, hang up); every `abandon_every`-th caller goes silent and never hangs up,
so the daemon's own no-audio deadline has to end it. Phase 2: `concurrent` calls at
once for `hold_s` seconds, measuring the largest gap between audio frames each caller
receives. The process's RSS, threads, fds and asyncio tasks and the daemon's live calls
are sampled after a warm-up, during the load and after everything has settled: what
does not come back to the post-warm-up baseline is a leak.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voxlive.server.health import Vitals

SETTLE_S = 1.0


@dataclass
class SoakReport:
    cycles: int
    abandoned: int
    failed: int
    warm_up: int
    baseline: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    concurrent: int = 0
    max_audio_gap_ms: float = 0.0
    stuck_calls: int = 0
    seconds: float = 0.0
    idle_flood: dict[str, Any] = field(default_factory=dict)

    def growth(self) -> dict[str, float]:
        """after - baseline, for each figure."""
        return {k: round(self.after[k] - self.baseline.get(k, 0), 1) for k in self.after}


def sample(daemon: Any) -> dict[str, float]:
    gc.collect()
    return {**asdict(Vitals.now()), "live_calls": daemon.live_calls()}


def _peak(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: max(a.get(k, 0), v) for k, v in b.items()}


async def one_cycle(url: str, talk: np.ndarray | None, abandon: bool,
                    held: list[Any]) -> None:
    """One call: connect, (say something), ping, hang up; or fall silent and stay."""
    from voxlive.harness.client import CallClient

    client = CallClient(url)
    await client.connect()
    if talk is not None:
        client.mic.say(talk)
        await asyncio.sleep(len(talk) / 48_000)
    client.send({"type": "ping"})
    await client.wait_for(lambda e: e["type"] == "pong", timeout=15)
    if abandon:
        from aiortc import MediaStreamTrack

        class Silent(MediaStreamTrack):
            kind = "audio"

            async def recv(self) -> Any:
                await asyncio.Event().wait()

        client.pc.getTransceivers()[0].sender.replaceTrack(Silent())
        held.append(client)  # never closed by us: the daemon must notice
        return
    await client.close()


def max_gap_ms(client: Any) -> float:
    times = client._received_at[5:]  # past the start-up
    if len(times) < 2:
        return float("nan")
    return round(float(np.max(np.diff(times))) * 1000, 1)


async def soak(url: str, daemon: Any, cycles: int, abandon_every: int = 5,
               warm_up: int = 5, concurrent: int = 4, hold_s: float = 5.0,
               talk: np.ndarray | None = None) -> SoakReport:
    """Run the cycles and the load against a running daemon; the figures as a report."""
    started = time.monotonic()
    report = SoakReport(cycles=cycles, abandoned=0, failed=0, warm_up=warm_up)
    held: list[Any] = []
    for i in range(cycles):
        if i == warm_up:  # warmed up by both patterns (the executor's threads, caches)
            await load(url, concurrent, hold_s)
            await settle(daemon, held)
            report.baseline = report.peak = sample(daemon)
        abandon = abandon_every > 0 and i % abandon_every == abandon_every - 1
        try:
            await one_cycle(url, talk, abandon, held)
            report.abandoned += abandon
        except Exception:
            report.failed += 1
        await release_ended(held)
        if i >= warm_up and i % 10 == 0:
            report.peak = _peak(report.peak, sample(daemon))

    report.concurrent = concurrent
    report.max_audio_gap_ms, during = await load(url, concurrent, hold_s, daemon)
    report.peak = _peak(report.peak, during)
    await settle(daemon, held)
    report.stuck_calls = len(daemon.calls)
    report.after = sample(daemon)
    if not report.baseline:
        report.baseline = report.after
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def release_ended(held: list[Any]) -> None:
    """Close the abandoned callers whose call the daemon has ended (as a browser tab's
    would be, eventually), so the caller side does not pile up in this process."""
    for client in [c for c in held if any(e["type"] == "call_ended" for e in c.events)]:
        held.remove(client)
        with contextlib.suppress(Exception):
            await client.close()


async def load(url: str, concurrent: int, hold_s: float, daemon: Any = None
               ) -> tuple[float, dict[str, float]]:
    """`concurrent` calls at once for `hold_s`: the largest gap between received audio
    frames, and the vitals while they run."""
    from voxlive.harness.client import CallClient

    clients = [CallClient(url) for _ in range(concurrent)]
    await asyncio.gather(*(c.connect() for c in clients), return_exceptions=True)
    await asyncio.sleep(hold_s)
    during = sample(daemon) if daemon is not None else {}
    gaps = [g for g in (max_gap_ms(c) for c in clients) if g == g]
    for client in clients:
        await client.close()
    return max(gaps, default=float("nan")), during


async def settle(daemon: Any, held: list[Any]) -> None:
    """Wait for the abandoned calls to end at the daemon's no-audio deadline."""
    deadline = time.monotonic() + daemon.limits.no_audio_timeout_s + 10
    while daemon.calls and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    for client in held:
        with contextlib.suppress(Exception):
            await client.close()
    held.clear()
    await asyncio.sleep(SETTLE_S)


FLOOD_SCRIPT = """
import resource, socket, sys, time
host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for i in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        s.send(b"GET / HTTP/1.1\\r\\nHost: " + host.encode())  # never finished
    except OSError:
        s.close()
        continue
    held.append(s)
print(len(held), flush=True)
time.sleep(hold)
"""


async def idle_flood(url: str, daemon: Any, sockets: int, hold_s: float = 3.0
                     ) -> dict[str, Any]:
    """`sockets` idle, half-sent connections from another process: does /healthz still
    answer, and how many fds does the daemon hold meanwhile?"""
    import sys
    from urllib.parse import urlsplit

    import aiohttp

    from voxlive.server.health import open_fds

    parts = urlsplit(url)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOOD_SCRIPT, parts.hostname or "127.0.0.1", str(parts.port),
        str(sockets), str(hold_s), stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    opened = int((await child.stdout.readline()).strip() or 0)
    fds = open_fds()
    t = time.monotonic()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=10)) as r:
            status = r.status
        healthz_ms = round((time.monotonic() - t) * 1000, 1)
        async with http.get(f"{url}/metrics") as r:
            metrics = await r.text()
    connections = {line.split()[0].removeprefix("voxlive_http_connections_"):
                   float(line.split()[1]) for line in metrics.splitlines()
                   if line.startswith("voxlive_http_connections_")}
    child.kill()
    await child.wait()
    return {"sockets": opened, "healthz_status": status, "healthz_ms": healthz_ms,
            "daemon_fds": fds, "fd_limit": fd_limit(), "connections": connections}


def fd_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def print_report(report: SoakReport) -> None:
    print(f"soak: {report.cycles} call cycles ({report.abandoned} abandoned, "
          f"{report.failed} failed, {report.warm_up} warm-up), then {report.concurrent} "
          f"concurrent calls; {report.seconds} s")
    print(f"{'':12}{'baseline':>10}{'peak':>10}{'after':>10}{'growth':>10}")
    growth = report.growth()
    for key in report.after:
        print(f"{key:12}{report.baseline.get(key, 0):>10}{report.peak.get(key, 0):>10}"
              f"{report.after[key]:>10}{growth[key]:>10}")
    print(f"largest audio gap under load: {report.max_audio_gap_ms} ms; "
          f"calls left after settling: {report.stuck_calls}")
    if report.idle_flood:
        f = report.idle_flood
        print(f"{f['sockets']} idle sockets (another process): /healthz {f['healthz_status']} "
              f"in {f['healthz_ms']} ms; daemon fds {f['daemon_fds']} (limit {f['fd_limit']}); "
              f"connections {f.get('connections')}")


def run_soak_bench(config: Any, profile: str | None, cycles: int, abandon_every: int,
                   concurrent: int, no_audio_timeout_s: float, as_json: bool,
                   idle_sockets: int = 0, fd_limit_n: int | None = None) -> int:
    import resource

    from voxlive.backends.loader import load_models
    from voxlive.server.app import Daemon, running

    if fd_limit_n:  # e.g. 1024, systemd's default, to see the daemon under it
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (fd_limit_n, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    name = profile or config.default_profile
    limits = config.server.limits.model_copy(update={"no_audio_timeout_s": no_audio_timeout_s,
                                                     "offers_per_minute": 100_000})
    server = config.server.model_copy(update={"limits": limits,
                                              "max_calls": max(16, concurrent + 8)})
    config = config.model_copy(update={"server": server})
    models = load_models(config.profile(name), progress=not as_json)

    async def main() -> SoakReport:
        daemon = Daemon(config, name, models, host="127.0.0.1")
        try:
            async with running(daemon) as url:
                report = await soak(url, daemon, cycles, abandon_every, concurrent=concurrent)
                if idle_sockets:
                    report.idle_flood = await idle_flood(url, daemon, idle_sockets)
                return report
        finally:
            await models.aclose()

    report = asyncio.run(main())
    if as_json:
        print(json.dumps({**asdict(report), "growth": report.growth()}))
    else:
        print_report(report)
    return 0 if report.stuck_calls == 0 and report.failed == 0 else 1
