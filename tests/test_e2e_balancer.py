"""deploy/scale-out/haproxy.cfg for real: HAProxy in front of two daemons (max_calls 1
each) routes offers around the full one by /healthz, and refuses when all are full; the
calls are real WebRTC on loopback (media straight to each daemon, not through HAProxy).
Models: real STT, espeak-ng TTS, the LLM is the vLLM TEST DOUBLE (no turn is spoken here:
the test is about where calls land)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REPO
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig, parse_config
from voxlive.harness.client import CallClient
from voxlive.server.app import Daemon, running

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="HAProxy (Debian package haproxy) is the balancer "
                                "under test; scripts/install-system-deps.sh installs it")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def two_daemons(double_config: VoxliveConfig, double_models: Models
                      ) -> AsyncIterator[list[tuple[str, Daemon]]]:
    data = double_config.model_dump()
    data["server"]["max_calls"] = 1
    config = parse_config(data)
    a, b = (Daemon(config, "double", double_models, host="127.0.0.1") for _ in range(2))
    async with running(a) as url_a, running(b) as url_b:
        yield [(url_a, a), (url_b, b)]


@pytest.fixture
def balancer(two_daemons: list[tuple[str, Daemon]], tmp_path: Path) -> Iterator[str]:
    """The shipped haproxy.cfg, bound to loopback and pointed at the two test daemons."""
    port = free_port()
    text = (REPO / "deploy/scale-out/haproxy.cfg").read_text()
    text = text.replace("bind :8080", f"bind 127.0.0.1:{port}")
    ports = [url.rsplit(":", 1)[1] for url, _ in two_daemons]
    text = re.sub(r"127\.0\.0\.1:8081", f"127.0.0.1:{ports[0]}", text)
    text = re.sub(r"127\.0\.0\.1:8082", f"127.0.0.1:{ports[1]}", text)
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    log = tmp_path / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)
            print(log.read_text())  # shown when the test fails: where each request went


async def offer_status(url: str) -> int:
    """POST a real offer through the balancer; the status only (the call is dropped)."""
    caller = CallClient(url)
    try:
        await caller.pc.setLocalDescription(await caller.pc.createOffer())
        offer = {"sdp": caller.pc.localDescription.sdp, "type": "offer"}
        async with aiohttp.ClientSession() as http, http.post(f"{url}/offer", json=offer) as r:
            return r.status
    finally:
        await caller.close()


async def until(check, seconds: float = 20.0) -> None:  # noqa: ANN001
    for _ in range(int(seconds / 0.25)):
        if await check():
            return
        await asyncio.sleep(0.25)
    raise AssertionError("condition not met in time")


async def test_the_balancer_routes_around_a_full_daemon(
        balancer: str, two_daemons: list[tuple[str, Daemon]]) -> None:
    daemons = [d for _, d in two_daemons]

    async def balancer_up() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{balancer}/healthz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    await until(balancer_up)
    callers = []
    try:
        for _ in range(2):
            caller = CallClient(balancer)
            await caller.connect()
            callers.append(caller)
        assert [d.live_calls() for d in daemons] == [1, 1]  # one on each, whatever the order
        assert await offer_status(balancer) == 503  # every daemon is full
        await callers[0].close()  # a call ends: its daemon takes calls again

        async def admitted() -> bool:
            caller = CallClient(balancer)
            try:
                await caller.connect()
            except (RuntimeError, aiohttp.ClientError, TimeoutError):
                await caller.close()
                return False
            callers.append(caller)
            return True

        await until(admitted)
        assert [d.live_calls() for d in daemons] == [1, 1]
    finally:
        for caller in callers:
            await caller.close()
