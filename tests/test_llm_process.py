"""`voxlive serve --spawn-llm`: LlmProcess starts, watches and stops a server process.

The process is tests/doubles/vllm_double.py run on its own, a TEST DOUBLE standing in
for `vllm serve` (no model runs); $VOXLIVE_VLLM_COMMAND / `command` put it in vllm's
place. Its extra options simulate a slow start, a crash while loading, an engine worker
child and a server that ignores SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.conftest import REPO, requires_espeak
from tests.doubles.vllm_double import DEFAULT_MODEL
from voxlive.backends.llm_process import (
    LOG_PREFIX,
    VLLM_COMMAND_ENV,
    LlmProcess,
    SpawnError,
    spawn_target,
    spawned_llm,
    vllm_command,
)
from voxlive.backends.loader import load_stage
from voxlive.config import OpenAILlm, Profile, VoxliveConfig, parse_config

pytestmark = pytest.mark.integration  # a server process spawned, stopped and killed

DOUBLE_COMMAND = [sys.executable, "-m", "tests.doubles.vllm_double"]


@pytest.fixture(autouse=True)
def _double_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m tests.doubles.vllm_double` from any working directory."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def llm_config(port: int, *spawn_args: str, **overrides: Any) -> OpenAILlm:
    settings: dict[str, Any] = {
        "backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": DEFAULT_MODEL,
        "connect_timeout_s": 1.0, "first_token_timeout_s": 3.0,
        "spawn_args": list(spawn_args), "spawn_timeout_s": 30.0,
    }
    settings.update(overrides)
    return OpenAILlm(**settings)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (zombies are already dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")


def pids_from(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()]


async def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """The pids still alive after `timeout` (orphans are reaped by init, not by us)."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


async def test_spawned_server_is_healthy_streams_and_stops_with_its_group(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="voxlive.backends.llm_process")
    pid_file = tmp_path / "pids"
    reply = "Spawned, healthy and streaming."
    config = llm_config(free_port(), "--reply", reply, "--startup-delay", "0.5", "--worker",
                        "--pid-file", str(pid_file), "--max-model-len", "4096")
    process = LlmProcess(config, DOUBLE_COMMAND, progress=False, grace_s=5.0)
    await asyncio.to_thread(process.__enter__)
    try:
        pids = pids_from(pid_file)
        assert len(pids) == 2 and all(alive(pid) for pid in pids)  # the server and its worker
        assert process.argv == [*DOUBLE_COMMAND, DEFAULT_MODEL, "--host", "127.0.0.1",
                                "--port", str(spawn_target(config).port), *config.spawn_args]
        # The daemon's LLM backend, loaded from a profile, streams from the spawned server.
        profile = Profile.model_validate({"stt": {"backend": "faster-whisper"},
                                          "llm": config.model_dump(),
                                          "tts": {"backend": "espeak-ng"}})
        llm, _seconds = load_stage("llm", profile)
        try:
            pieces = [piece async for piece in llm.stream([{"role": "user", "content": "hi"}])]
        finally:
            await llm.aclose()
        assert "".join(pieces) == reply and len(pieces) > 1
    finally:
        await asyncio.to_thread(process.__exit__, None, None, None)

    assert await wait_gone(pids) == []
    assert process.process is not None and process.process.returncode is not None
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(LOG_PREFIX) and "TEST DOUBLE of vLLM" in m for m in logged)
    assert any("ignoring vLLM options: --max-model-len 4096" in m for m in logged)
    assert any("is healthy at" in m for m in logged)


async def test_a_server_that_ignores_sigterm_is_killed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pid_file = tmp_path / "pids"
    config = llm_config(free_port(), "--ignore-sigterm", "--worker", "--pid-file", str(pid_file))
    process = LlmProcess(config, DOUBLE_COMMAND, progress=False, grace_s=0.5)
    await asyncio.to_thread(process.__enter__)
    pids = pids_from(pid_file)
    started = time.monotonic()
    await asyncio.to_thread(process.stop)
    elapsed = time.monotonic() - started

    assert await wait_gone(pids) == []
    assert process.process is not None and process.process.returncode == -signal.SIGKILL
    assert 0.5 <= elapsed < 5.0
    assert any("killing it" in r.getMessage() for r in caplog.records)
    await asyncio.to_thread(process.stop)  # a second stop is harmless


async def test_early_exit_is_reported_with_the_log_tail(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    config = llm_config(free_port(), "--exit-after", "0.2", "--exit-code", "3", "--worker",
                        "--pid-file", str(pid_file))
    process = LlmProcess(config, DOUBLE_COMMAND, progress=False, grace_s=2.0)
    started = time.monotonic()
    with pytest.raises(SpawnError) as caught:
        await asyncio.to_thread(process.__enter__)

    message = str(caught.value)
    assert "exited with code 3 before it became healthy" in message
    assert "its last log lines:" in message
    assert f"{LOG_PREFIX}ERROR [vllm_double] simulated failure: CUDA out of memory" in message
    assert time.monotonic() - started < 10
    assert await wait_gone(pids_from(pid_file)) == []  # its orphaned worker went too


async def test_timeout_is_reported_and_the_server_stopped(tmp_path: Path) -> None:
    # 5 s: long enough for the double to start and log on a busy machine, far below its 60 s.
    pid_file = tmp_path / "pids"
    config = llm_config(free_port(), "--startup-delay", "60", "--pid-file", str(pid_file),
                        spawn_timeout_s=5.0)
    process = LlmProcess(config, DOUBLE_COMMAND, progress=False, grace_s=2.0,
                         poll_interval_s=0.1)
    started = time.monotonic()
    with pytest.raises(SpawnError) as caught:
        await asyncio.to_thread(process.__enter__)
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert f"did not become healthy at {spawn_target(config).health_url}" in message
    assert "within 5 s (llm.spawn_timeout_s)" in message
    assert "loading weights (60 s)" in message
    assert 5.0 <= elapsed < 30.0  # gave up at the timeout, long before the 60 s start
    assert await wait_gone(pids_from(pid_file)) == []


def test_health_url_and_command() -> None:
    config = llm_config(8123, "--max-model-len", "8192")
    target = spawn_target(config)
    assert (target.host, target.port, target.health_url) == (
        "127.0.0.1", 8123, "http://127.0.0.1:8123/health")
    assert spawn_target(llm_config(0, base_url="http://[::1]:9000/v1")).health_url == (
        "http://[::1]:9000/health")
    assert spawn_target(llm_config(0, base_url="http://localhost:8000/v1")).host == "localhost"
    process = LlmProcess(config, ["vllm", "serve"])
    assert process.argv == ["vllm", "serve", DEFAULT_MODEL, "--host", "127.0.0.1",
                            "--port", "8123", "--max-model-len", "8192"]


def test_the_command_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VLLM_COMMAND_ENV, raising=False)
    assert vllm_command() == ["vllm", "serve"]
    monkeypatch.setenv(VLLM_COMMAND_ENV, "/opt/vllm env/bin/python -m vllm.entrypoints.cli")
    assert vllm_command() == ["/opt/vllm", "env/bin/python", "-m", "vllm.entrypoints.cli"]
    monkeypatch.setenv(VLLM_COMMAND_ENV, "'/opt/vllm env/bin/vllm' serve")
    assert vllm_command() == ["/opt/vllm env/bin/vllm", "serve"]


@pytest.mark.parametrize("base_url, expected", [
    ("http://10.1.2.3:8000/v1", "points at the host '10.1.2.3'"),
    ("http://gpu-box.lan:8000/v1", "points at the host 'gpu-box.lan'"),
    ("https://127.0.0.1:8000/v1", "plain-http"),
])
def test_refuses_a_server_that_is_not_local(base_url: str, expected: str) -> None:
    with pytest.raises(SpawnError, match=expected):
        spawn_target(llm_config(0, base_url=base_url))


def test_refuses_a_profile_whose_llm_is_not_openai(config: VoxliveConfig) -> None:
    with (pytest.raises(SpawnError, match=r"`openai` LLM backend.*'llama-cpp'"),
          spawned_llm(config, "embedded")):
        pass


def test_a_missing_vllm_command_is_explained() -> None:
    process = LlmProcess(llm_config(free_port()), ["/nonexistent/vllm", "serve"])
    with pytest.raises(SpawnError) as caught:
        process.start()
    assert "'/nonexistent/vllm' was not found" in str(caught.value)
    assert VLLM_COMMAND_ENV in str(caught.value)


def test_refuses_a_port_that_is_already_taken() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        process = LlmProcess(llm_config(busy.getsockname()[1]), DOUBLE_COMMAND)
        with pytest.raises(SpawnError, match="already listens at 127.0.0.1"):
            process.start()
    assert process.process is None


# --- the command line: voxlive serve --spawn-llm ------------------------------------------


def write_config(tmp_path: Path, config: VoxliveConfig, llm_port: int, pid_file: Path) -> Path:
    data = config.model_dump()
    data["default_profile"] = "spawned"
    data["profiles"] = {"spawned": {
        "stt": {"backend": "faster-whisper"},
        "llm": llm_config(llm_port, "--reply", "Hello from the spawned double.", "--worker",
                          "--pid-file", str(pid_file)).model_dump(),
        "tts": {"backend": "espeak-ng"},
    }}
    parse_config(data)  # a valid file
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_serve(config_path: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, VLLM_COMMAND_ENV: " ".join(DOUBLE_COMMAND)}
    return subprocess.Popen(
        [sys.executable, "-m", "voxlive", "serve", "--config", str(config_path),
         "--port", str(port), "--spawn-llm"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)


async def read_until(process: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """The output up to the first line that contains `needle` (or up to the exit)."""
    assert process.stdout is not None
    seen: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if needle in line:
                return

    await asyncio.wait_for(asyncio.to_thread(read), timeout)
    return "".join(seen)


async def page_status(url: str, timeout: float) -> int:
    """The page's HTTP status, once the daemon listens ("is listening" is printed just
    before it binds its port)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    return response.status
            except aiohttp.ClientConnectorError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


@requires_espeak
@pytest.mark.e2e
async def test_serve_spawn_llm_serves_and_ctrl_c_stops_the_server(
        tmp_path: Path, config: VoxliveConfig) -> None:
    pid_file = tmp_path / "pids"
    port = free_port()
    serve = start_serve(write_config(tmp_path, config, free_port(), pid_file), port)
    try:
        output = await read_until(serve, "is listening", timeout=120)
        assert "is listening" in output, output
        assert LOG_PREFIX in output and "is healthy at" in output
        pids = pids_from(pid_file)
        assert all(alive(pid) for pid in pids)
        assert await page_status(f"http://127.0.0.1:{port}/", timeout=20) == 200

        serve.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = await asyncio.to_thread(serve.communicate, timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert serve.returncode == 0, rest
    assert "stopping the LLM server" in rest
    assert await wait_gone(pids) == []


@requires_espeak
@pytest.mark.e2e
async def test_serve_spawn_llm_stops_the_server_when_the_daemon_fails_to_start(
        tmp_path: Path, config: VoxliveConfig) -> None:
    pid_file = tmp_path / "pids"
    with socket.socket() as busy:  # the daemon's port is taken: it cannot listen
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        serve = start_serve(write_config(tmp_path, config, free_port(), pid_file),
                            busy.getsockname()[1])
        try:
            output, _ = await asyncio.to_thread(serve.communicate, timeout=120)
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()
    assert serve.returncode != 0, output
    assert "is healthy at" in output and "stopping the LLM server" in output
    assert await wait_gone(pids_from(pid_file)) == []


async def test_serve_spawn_llm_refuses_a_profile_without_openai(config: VoxliveConfig) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "voxlive", "serve", "--profile", "embedded", "--spawn-llm"],
        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1
    assert "--spawn-llm" in result.stderr and "'llama-cpp'" in result.stderr
