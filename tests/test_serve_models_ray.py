"""`voxlive serve-models --ray`: the engines as Ray Serve deployments on a one-node Ray
cluster that this test session starts on 127.0.0.1 (two STT replicas, one TTS replica,
the embedded-small profile's faster-whisper tiny.en and piper), and daemons whose `remote`
STT and TTS use it over real WebRTC calls. The LLM is the vLLM TEST DOUBLE (no vLLM here).

The cluster is started once for the file (about 30 s on two busy cores)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.conftest import config_with_profile, requires_espeak, small_profile
from tests.words import share_found
from voxlive.backends.loader import Models, load_models
from voxlive.backends.stt_remote import encode_wav, multipart
from voxlive.config import VoxliveConfig, parse_config
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak
from voxlive.server.app import Daemon, running
from voxlive.serving.local_app import BATCH_HEADER

pytestmark = [
    pytest.mark.models,
    requires_espeak,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="Ray Serve is not installed (pip install 'voxlive[serve]'; "
                       "make setup-test installs it)"),
]
QUESTION = "What is the capital of France?"
LONG = " ".join(f"This is sentence number {n} of a long reply." for n in range(1, 30))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ray_models(config: VoxliveConfig) -> Iterator[str]:
    """The model server as Ray Serve deployments; yields its base URL (…/v1)."""
    from voxlive.serving.config import ServeModelsConfig, ray_loopback_only

    ray_loopback_only()  # before Ray is imported: the cluster talks over 127.0.0.1 only
    import ray
    from ray import serve

    from voxlive.serving.ray_app import run

    ray.init(num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    settings = ServeModelsConfig(
        port=free_port(), stt={"replicas": 2, "num_cpus": 0.25, "batch_wait_ms": 100},
        tts={"num_cpus": 0.25}, emotion={"enabled": False}, vision={"enabled": False})
    try:
        yield run(settings, small_profile(config), blocking=False)
    finally:
        serve.shutdown()
        ray.shutdown()


async def stats(url: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(f"{url}/stats") as r:
        return await r.json()


async def test_concurrent_requests_are_batched_across_replicas(ray_models: str) -> None:
    speech = encode_wav(espeak(QUESTION, 16_000))

    async def transcribe(http: aiohttp.ClientSession) -> tuple[str, int]:
        body, content_type = multipart({"model": "stt", "response_format": "json"}, "file",
                                       "q.wav", speech, "audio/wav")
        async with http.post(f"{ray_models}/audio/transcriptions", data=body,
                             headers={"Content-Type": content_type}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["text"], int(r.headers[BATCH_HEADER])

    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(*[transcribe(http) for _ in range(6)])
    assert all(share_found(QUESTION, text) == 1.0 for text, _ in answers)
    assert max(size for _, size in answers) > 1  # @serve.batch put requests together


async def test_a_streamed_synthesis_stops_when_the_client_closes(ray_models: str) -> None:
    before = (await stats(ray_models))["tts"]
    speech = {"input": LONG, "model": "tts-1", "voice": "x"}
    async with aiohttp.ClientSession() as http, http.post(f"{ray_models}/audio/speech",
                                                          json=speech) as r:
        assert r.status == 200 and r.headers["X-Sample-Rate"] == "24000"
        assert len(await r.content.readany()) > 0
    # leaving the block closed the stream: Serve cancels the request in the replica
    for _ in range(300):
        now = (await stats(ray_models))["tts"]
        if now["active"] == 0 and now["stopped_early"] > before["stopped_early"]:
            break
        await asyncio.sleep(0.1)
    assert now["stopped_early"] == before["stopped_early"] + 1
    assert now["finished"] == before["finished"]
    assert now["sentences"] - before["sentences"] < 29


# --- daemons that use the model server --------------------------------------------------


@pytest.fixture(scope="session")
def remote_config(config: VoxliveConfig, ray_models: str, vllm_double: Any) -> VoxliveConfig:
    from tests.doubles.vllm_double import DEFAULT_MODEL

    remote = config_with_profile(config, "remote", {
        "stt": {"backend": "remote", "base_url": ray_models, "model": "stt", "timeout_s": 60},
        "llm": {"backend": "openai", "base_url": vllm_double.base_url, "model": DEFAULT_MODEL,
                "connect_timeout_s": 2, "first_token_timeout_s": 10},
        "tts": {"backend": "remote", "base_url": ray_models, "timeout_s": 5},
        "emotion": {"backend": "prosody"},
    })
    data = remote.model_dump()
    data["server"]["max_calls"] = 1  # so that the second call must go to the other daemon
    return parse_config(data)


@pytest.fixture
async def daemons(remote_config: VoxliveConfig) -> AsyncIterator[list[tuple[str, Daemon]]]:
    """Two daemons sharing the model server, each with its own models (VAD, the remote
    clients) as two processes would have."""
    loaded: list[Models] = [load_models(remote_config.profile("remote"), progress=False)
                            for _ in range(2)]
    a, b = (Daemon(remote_config, "remote", m, host="127.0.0.1") for m in loaded)
    try:
        async with running(a) as url_a, running(b) as url_b:
            yield [(url_a, a), (url_b, b)]
    finally:
        for models in loaded:
            await models.aclose()


async def pick_daemon(urls: list[str]) -> str:
    """What a load balancer does with /healthz: the first daemon that answers 200."""
    async with aiohttp.ClientSession() as http:
        for url in urls:
            async with http.get(f"{url}/healthz") as r:
                if r.status == 200:
                    return url
    raise AssertionError("every daemon is full")


async def ask(caller: CallClient) -> tuple[dict[str, Any], np.ndarray]:
    mark = len(caller.events)
    caller.mic.say(espeak(QUESTION, 48_000))
    reply = await caller.wait_for(lambda e: e["type"] == "assistant_text" and e["final"],
                                  timeout=90, start=mark)
    await caller.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                          timeout=30, start=caller.events.index(reply))
    return reply, caller.received_audio()


@pytest.mark.e2e
async def test_two_calls_through_two_daemons_share_one_model_server(
        daemons: list[tuple[str, Daemon]]) -> None:
    urls = [url for url, _ in daemons]
    callers: list[CallClient] = []
    try:
        for _ in range(2):
            caller = CallClient(await pick_daemon(urls))
            await caller.connect()
            callers.append(caller)
            if len(callers) == 1:  # the first daemon is full now: a balancer sees it
                async with aiohttp.ClientSession() as http:
                    async with http.get(f"{urls[0]}/healthz") as r:
                        body = await r.json()
                        assert r.status == 503 and body["status"] == "full"
                        assert r.headers["Retry-After"]
                    async with http.get(f"{urls[0]}/healthz?live=1") as r:
                        assert r.status == 200  # alive: a restarter leaves it alone
        assert [c.base_url for c in callers] == urls  # one call on each daemon
        replies = await asyncio.gather(*[ask(c) for c in callers])
        for reply, audio in replies:
            assert "Paris" in reply["text"]
            assert float(np.abs(audio).max()) > 0.05  # the reply's speech came through
        assert not any(e["type"] == "error" for c in callers for e in c.events)
    finally:
        for caller in callers:
            await caller.close()


@pytest.mark.e2e
async def test_a_failing_tts_replica_is_an_error_event_and_the_call_goes_on(
        daemons: list[tuple[str, Daemon]], ray_models: str) -> None:
    pid = (await stats(ray_models))["tts"]["pid"]
    caller = CallClient(daemons[0][0])
    try:
        await caller.connect()
        os.kill(pid, signal.SIGSTOP)  # the TTS replica hangs (a stuck GPU, say)...
        try:
            caller.mic.say(espeak(QUESTION, 48_000))
            error = await caller.wait_for(lambda e: e["type"] == "error", timeout=90)
            assert error["stage"] == "tts" and "tts.timeout_s" in error["message"]
            await caller.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                                  timeout=30, start=caller.events.index(error))
        finally:
            os.kill(pid, signal.SIGKILL)  # ... and dies: Serve starts another
        await replaced(ray_models, pid)
        reply, audio = await ask(caller)  # the same call goes on
        assert "Paris" in reply["text"] and float(np.abs(audio).max()) > 0.05
    finally:
        await caller.close()


async def replaced(url: str, dead_pid: int) -> None:
    """Until a new TTS replica answers (bounded: Serve restarts it in seconds)."""
    for _ in range(120):
        try:
            if (await stats(url))["tts"].get("pid") not in (None, dead_pid):
                return
        except (TimeoutError, aiohttp.ClientError, KeyError, TypeError):
            pass
        await asyncio.sleep(1)
    raise AssertionError("Serve did not replace the dead TTS replica within 2 minutes")



def test_app_builder_reads_both_config_files(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """`serve run voxlive.serving.ray_app:app_builder` and KubeRay's import_path; a
    cluster's server is reachable beyond loopback, so it needs keys."""
    from voxlive.config.schema import ConfigError
    from voxlive.serving.ray_app import app_builder

    settings = tmp_path / "serve-models.yaml"
    settings.write_text("profile: embedded-small\nstt: {replicas: 3, num_gpus: 0.25}\n"
                        "vision: {enabled: false}\n")
    with pytest.raises(ConfigError, match="needs api_keys"):
        app_builder({"serve_config": str(settings)})
    key = "cluster-key-" + "c" * 24
    monkeypatch.setenv("VOXLIVE_MODELS_KEY", key)
    settings.write_text(settings.read_text() + "api_keys: [env:VOXLIVE_MODELS_KEY]\n")
    app = app_builder({"serve_config": str(settings)})  # models.yaml: the repository's
    ingress = app._bound_deployment
    assert ingress.init_args[2].keys == (key,)
    stages = {name: stage._bound_deployment for name, stage in ingress.init_args[0].items()}
    assert ingress.name == "voxlive-ingress" and set(stages) == {"stt", "tts", "emotion"}
    assert stages["stt"].num_replicas == 3
    assert stages["stt"].ray_actor_options == {"num_cpus": 1.0, "num_gpus": 0.25}
