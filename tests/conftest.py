"""Shared fixtures: real models are loaded once per test run, not once per test."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from voxlive.backends.loader import Models, load_models, load_stage, warm_up
from voxlive.config import Profile, VoxliveConfig, load_config, parse_config
from voxlive.server.app import Daemon, running

REPO = Path(__file__).resolve().parent.parent

# The gpu stack's tests need packages that cannot live in this venv; test_gpu_stack.py
# runs them in their own environment (see tests/gpu_stack/__init__.py).
collect_ignore = [] if importlib.util.find_spec("parler_tts") else ["gpu_stack"]

# Test tiers (pyproject.toml lists them): `make check` runs the unit tier alone, in under a
# minute. A test's tier follows from what it needs, so a new test is placed without a marker:
# a real model loaded by a shared fixture makes it `models`, a whole call `e2e`, Chromium
# `browser`. A test that loads a model some other way says so with @pytest.mark.models.
MODEL_FIXTURES = {"embedded_models", "double_models", "whisper_stt", "tiny_en", "tiny_siglip",
                  "stt", "detector", "human"}
CALL_FIXTURES = {"embedded_server", "double_server", "vision_url", "pulse"}
TIERS = ("unit", "integration", "models", "e2e", "browser")


def tier_of(item: pytest.Item) -> str:
    marked = {m.name for m in item.iter_markers()} & set(TIERS)
    for tier in reversed(TIERS):  # the heaviest tier a test is marked with wins
        if tier in marked:
            return tier
    fixtures = set(getattr(item, "fixturenames", ()))
    if item.path.name.startswith("test_e2e") or fixtures & CALL_FIXTURES:
        return "e2e"
    if fixtures & MODEL_FIXTURES or item.path.parent.name == "gpu_stack":
        return "models"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item))

requires_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng (Debian package) makes the test speech; .ci/run installs it",
)


@pytest.fixture(scope="session")
def config() -> VoxliveConfig:
    return load_config(REPO / "models.yaml")


# The many end-to-end tests run the small embedded profile (SmolLM2-135M answers at
# 60-90 tok/s on 2 cores); the default profile's larger LLM (about 15 tok/s) is loaded once
# for the few tests that judge its answers (default_models).
SMALL_PROFILE = "embedded-small"


# The end-to-end tests ask espeak-ng's "What is the capital of France?" over Opus, which
# tiny.en's short window hears as "capital and friends" in about half the voices (the 30 s
# window hears it right): the tests' STT redoes unsure transcripts (below 0.86) on the 30 s
# window, so that what they check is the call, not that phrase. The profiles keep the
# faster rule measured better on the whole (voxlive/backends/stt_whisper.py).
TEST_STT = {"short_window_min_confidence": 0.86}


def small_profile(config: VoxliveConfig) -> Profile:
    """The small embedded profile as the tests run it (TEST_STT)."""
    profile = config.profile(SMALL_PROFILE)
    if profile.stt is None or profile.stt.backend != "faster-whisper":
        return profile  # Moonshine has no short window to redo
    return profile.model_copy(update={"stt": profile.stt.model_copy(update=TEST_STT)})


@pytest.fixture(scope="session")
def tiny_en() -> Any:
    """faster-whisper tiny.en as the profiles with Whisper run it (beam 5, TEST_STT), for
    what only Whisper does: batching utterances of several calls in one pass."""
    from voxlive.backends.loader import build
    from voxlive.config import FasterWhisperStt

    return build("stt", FasterWhisperStt(backend="faster-whisper", beam_size=5, **TEST_STT))


@pytest.fixture(scope="session")
def embedded_models(config: VoxliveConfig) -> Models:
    """The real small embedded stack: Silero, faster-whisper tiny.en, SmolLM2, piper."""
    return load_models(small_profile(config), progress=False)


@pytest.fixture(scope="session")
def default_models(config: VoxliveConfig, embedded_models: Models) -> Models:
    """The default profile's models, for real. Stages configured exactly as in the small
    profile are shared with embedded_models rather than loaded twice."""
    default, small = config.profile(config.default_profile), small_profile(config)
    loaded = {}
    for stage in ("vad", "stt", "llm", "tts", "vision", "emotion"):
        if getattr(default, stage) is None:
            continue
        if getattr(default, stage) == getattr(small, stage):
            loaded[stage] = getattr(embedded_models, stage)
        else:
            loaded[stage] = load_stage(stage, default)[0]
    models = Models(**loaded)
    warm_up(models)
    return models


def config_with_profile(config: VoxliveConfig, name: str, profile: dict) -> VoxliveConfig:
    data = config.model_dump()
    data["profiles"][name] = profile
    return parse_config(data)


@pytest.fixture
async def embedded_server(config: VoxliveConfig, embedded_models: Models) -> AsyncIterator[str]:
    daemon = Daemon(config, SMALL_PROFILE, embedded_models, host="127.0.0.1")
    async with running(daemon) as url:
        yield url


@pytest.fixture
async def default_server(config: VoxliveConfig, default_models: Models) -> AsyncIterator[str]:
    daemon = Daemon(config, config.default_profile, default_models, host="127.0.0.1")
    async with running(daemon) as url:
        yield url


@pytest.fixture(scope="session")
async def vllm_double() -> AsyncIterator[object]:
    """A TEST DOUBLE of a vLLM server (tests/doubles), for what cannot run here."""
    from tests.doubles.vllm_double import VllmDouble

    async with VllmDouble(reply="The capital of France is Paris. It is lovely in spring.") as d:
        yield d


@pytest.fixture(scope="session")
def double_config(config: VoxliveConfig, vllm_double) -> VoxliveConfig:  # noqa: ANN001
    """Real STT, prosody emotion and espeak-ng TTS, with the LLM played by the vLLM double."""
    from tests.doubles.vllm_double import DEFAULT_MODEL

    return config_with_profile(config, "double", {
        "stt": {"backend": "faster-whisper", "beam_size": 5, **TEST_STT},
        "llm": {"backend": "openai", "base_url": vllm_double.base_url, "model": DEFAULT_MODEL,
                "connect_timeout_s": 1, "first_token_timeout_s": 3},
        "tts": {"backend": "espeak-ng"},
        "emotion": {"backend": "prosody"},
    })


@pytest.fixture(scope="session")
async def double_models(double_config: VoxliveConfig) -> AsyncIterator[Models]:
    models = load_models(double_config.profile("double"), progress=False)
    yield models
    await models.aclose()  # its LLM client's HTTP session


@pytest.fixture
async def double_server(double_config: VoxliveConfig, double_models: Models
                        ) -> AsyncIterator[tuple[str, Daemon]]:
    daemon = Daemon(double_config, "double", double_models, host="127.0.0.1")
    async with running(daemon) as url:
        yield url, daemon
