"""The daemon under test in `voxlive bench capacity`: its own process, pinned to a core.

The capacity of one core is the question, so the daemon runs alone on it (`taskset`)
and the callers run on the other cores. Its CPU time and memory come from /proc, its
event-loop lag, output gaps and shared-model counters from /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

START_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_config(config: Any, max_calls: int) -> dict[str, Any]:
    """The configuration with room for the load: more calls and offers than a default."""
    data = config.model_dump(mode="json", exclude_none=True)
    server = data.setdefault("server", {})
    server["max_calls"] = max_calls
    limits = server.setdefault("limits", {})
    limits["offers_per_minute"] = 100_000
    return data


class ServerProcess:
    """`voxlive serve` in a child process; `env` switches variants (VOXLIVE_FAIR_SCHED,
    VOXLIVE_LEGACY_AUDIO)."""

    def __init__(self, config: Any, profile: str, max_calls: int, core: int | None,
                 env: dict[str, str] | None = None, name: str = "daemon"):
        self.name = name
        self.core = core
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="voxlive-capacity-")
        path = Path(self._dir.name) / "models.yaml"
        path.write_text(yaml.safe_dump(bench_config(config, max_calls)))
        command = [sys.executable, "-m", "voxlive", "serve", "--config", str(path),
                   "--profile", profile, "--host", "127.0.0.1", "--port", str(self.port)]
        if core is not None:
            command = ["taskset", "-c", str(core), *command]
        self.log = open(Path(self._dir.name) / "serve.log", "w+b")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready in {START_TIMEOUT_S:g} s: {self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-1500:]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the daemon so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def metrics(self) -> dict[str, float]:
        """The /metrics gauges and counters, by name (histogram buckets left out)."""
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/metrics") as r:
            text = await r.text()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or "{" in line or " " not in line:
                continue
            name, value = line.rsplit(" ", 1)
            with contextlib.suppress(ValueError):
                out[name.removeprefix("voxlive_")] = float(value)
        return out

    async def live_calls(self) -> int:
        return int((await self.metrics()).get("active_calls", 0))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self._dir.cleanup()
