"""Looking through the camera in a real WebRTC call: an aiortc caller sends a video track
(a photograph shipped with scikit-image), asks "what do you see?", and the description
reaches the LLM's prompt for that turn. STT, VAD, TTS and the OpenCV vision backend are
real; the LLM is the vLLM test double, whose recorded requests show the prompt."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import config_with_profile, requires_espeak
from voxlive.backends.loader import Models, load_models
from voxlive.config import VoxliveConfig
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak
from voxlive.server.app import Daemon, running

pytestmark = requires_espeak
skimage_data = pytest.importorskip("skimage.data", reason="the test extra installs scikit-image")
pytest.importorskip("cv2", reason="the vision extra installs opencv-python-headless")


@pytest.fixture(scope="module")
async def vision_setup(config: VoxliveConfig, vllm_double  # noqa: ANN001
                       ) -> AsyncIterator[tuple[VoxliveConfig, Models]]:
    from tests.doubles.vllm_double import DEFAULT_MODEL

    vision_config = config_with_profile(config, "vision", {
        "stt": {"backend": "faster-whisper"},
        "llm": {"backend": "openai", "base_url": vllm_double.base_url, "model": DEFAULT_MODEL},
        "tts": {"backend": "espeak-ng"},
        "vision": {"backend": "opencv"},
    })
    models = load_models(vision_config.profile("vision"), progress=False)
    yield vision_config, models
    await models.aclose()


@pytest.fixture
async def vision_url(vision_setup) -> AsyncIterator[str]:  # noqa: ANN001
    config, models = vision_setup
    async with running(Daemon(config, "vision", models, host="127.0.0.1")) as url:
        yield url


async def test_what_do_you_see_puts_the_camera_into_the_prompt(vision_url: str,
                                                                vllm_double) -> None:  # noqa: ANN001
    client = CallClient(vision_url, camera=skimage_data.astronaut())
    await client.connect()
    try:
        first = await client.wait_for(lambda e: e["type"] == "vision", timeout=15)
        assert first["reason"] == "call_start" and not first["cached"]
        assert "face" in first["caption"]
        assert first["thumbnail"].startswith("data:image/jpeg;base64,")

        mark = len(client.events)
        requests_before = len(vllm_double.requests)
        client.mic.say(espeak("What do you see?", 48_000))
        looked = await client.wait_for(lambda e: e["type"] == "vision", timeout=30, start=mark)
        assert looked["reason"] == "intent"
        assert looked["cached"]  # the same picture: the first description is reused
        await client.wait_for(lambda e: e["type"] == "assistant_text" and e["final"], 30, mark)
        latency = await client.wait_for(lambda e: e["type"] == "turn_latency", 30, mark)
        assert latency["vision_ms"] >= 0

        prompt = vllm_double.requests[requests_before]["messages"]
        camera_notes = [m["content"] for m in prompt if m["role"] == "system"
                        and "camera" in m["content"]]
        assert camera_notes and first["caption"] in camera_notes[0]

        mark = len(client.events)
        requests_before = len(vllm_double.requests)
        client.mic.say(espeak("What is the capital of France?", 48_000))
        await client.wait_for(lambda e: e["type"] == "assistant_text" and e["final"], 30, mark)
        assert not [e for e in client.events[mark:] if e["type"] == "vision"]
        prompt = vllm_double.requests[requests_before]["messages"]
        assert not any("camera" in m["content"] for m in prompt if m["role"] == "system")
    finally:
        await client.close()


async def test_an_audio_only_call_never_looks(vision_url: str) -> None:
    client = CallClient(vision_url)
    await client.connect()
    try:
        client.mic.say(espeak("What do you see?", 48_000))
        await client.wait_for(lambda e: e["type"] == "assistant_text" and e["final"], timeout=30)
        assert not [e for e in client.events if e["type"] == "vision"]
    finally:
        await client.close()


@pytest.mark.e2e
async def test_the_llm_can_ask_to_look_with_a_tool_call(config: VoxliveConfig) -> None:
    """The vLLM double answers like vLLM with --enable-auto-tool-choice: a `look` call."""
    from tests.doubles.vllm_double import DEFAULT_MODEL, VllmDouble

    async with VllmDouble(reply="You are in a bright room.", tool_call="look") as llm:
        tool_config = config_with_profile(config, "vision-tools", {
            "stt": {"backend": "faster-whisper"},
            "llm": {"backend": "openai", "base_url": llm.base_url, "model": DEFAULT_MODEL},
            "tts": {"backend": "espeak-ng"},
            "vision": {"backend": "opencv"},
        })
        models = load_models(tool_config.profile("vision-tools"), progress=False)
        daemon = Daemon(tool_config, "vision-tools", models, host="127.0.0.1", owns_models=True)
        async with running(daemon) as url:
            client = CallClient(url, camera=skimage_data.astronaut())
            await client.connect()
            try:
                await client.wait_for(lambda e: e["type"] == "vision", timeout=15)
                mark = len(client.events)
                client.mic.say(espeak("Please describe my surroundings.", 48_000))
                reply = await client.wait_for(
                    lambda e: e["type"] == "assistant_text" and e["final"], 30, mark)
                looked = [e for e in client.events[mark:] if e["type"] == "vision"]
            finally:
                await client.close()
        offered, answered = llm.requests[-2], llm.requests[-1]
        assert offered["tools"][0]["function"]["name"] == "look"
        assert [m["role"] for m in answered["messages"][-2:]] == ["assistant", "tool"]
        assert looked and looked[0]["reason"] == "tool"
        assert answered["messages"][-1]["content"] == looked[0]["caption"]
        assert answered["messages"][-2]["tool_calls"][0]["function"]["name"] == "look"
        assert answered["tools"][0]["function"]["name"] == "look"  # rounds left: may call again
        assert reply["text"] == "You are in a bright room."
