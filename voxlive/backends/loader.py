"""Builds the backends a profile names, once per process, with a progress bar."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voxlive.audio.vad import SileroVad
from voxlive.backends.base import BackendError, LanguageModel, SpeechToText, TextToSpeech
from voxlive.config import Profile, resolve_model

log = logging.getLogger(__name__)


def _build_vad(config: Any) -> SileroVad:
    return SileroVad(resolve_model(config.model))


def _build_stt(config: Any) -> SpeechToText:
    if config.backend == "remote":
        from voxlive.backends.stt_remote import RemoteSTT

        return RemoteSTT(config)
    if config.other_languages is not None:
        from voxlive.backends.stt_languages import LanguageFallbackSTT

        return LanguageFallbackSTT(config)
    from voxlive.backends.stt_whisper import FasterWhisperSTT

    return FasterWhisperSTT(config)


def _build_llm(config: Any) -> LanguageModel:
    if config.backend == "llama-cpp":
        from voxlive.backends.llm_llamacpp import LlamaCppLLM

        return LlamaCppLLM(config)
    from voxlive.backends.llm_openai import OpenAIChatLLM

    return OpenAIChatLLM(config)


def _build_tts(config: Any) -> TextToSpeech:
    if config.backend == "piper":
        from voxlive.backends.tts_piper import PiperTTS

        return PiperTTS(config)
    if config.backend == "parler":
        from voxlive.backends.tts_parler import ParlerTTS

        return ParlerTTS(config)
    if config.backend == "remote":
        from voxlive.backends.tts_remote import RemoteTTS

        return RemoteTTS(config)
    from voxlive.backends.tts_espeak import EspeakTTS

    return EspeakTTS(config)


def _build_vision(config: Any) -> Any:
    if config.backend == "remote":
        from voxlive.vision.remote_backend import RemoteVision

        return RemoteVision(config)
    if config.backend == "opencv":
        from voxlive.vision.opencv_backend import OpenCVVisionBackend

        return OpenCVVisionBackend(config)
    from voxlive.vision.siglip_backend import SiglipVisionBackend

    return SiglipVisionBackend(config)


def _build_emotion(config: Any) -> Any:
    if config.backend == "remote":
        from voxlive.emotion.remote_backend import RemoteEmotion

        return RemoteEmotion(config)
    if config.backend == "prosody":
        from voxlive.emotion.prosody import ProsodyEmotionBackend

        return ProsodyEmotionBackend(config)
    from voxlive.emotion.speechbrain_backend import SpeechBrainEmotionBackend

    return SpeechBrainEmotionBackend(config)


def _build_turn_detector(config: Any) -> Any:
    from voxlive.turn.detector import load_detector

    return load_detector(config)  # None for `none`: turns end on silence alone


BUILDERS: dict[str, Callable[[Any], Any]] = {
    "vad": _build_vad,
    "stt": _build_stt,
    "llm": _build_llm,
    "tts": _build_tts,
    "vision": _build_vision,
    "emotion": _build_emotion,
    "turn_detector": _build_turn_detector,
}


@dataclass
class Models:
    """The loaded models of one profile; one instance per process, shared by every call."""

    vad: SileroVad
    stt: SpeechToText
    llm: LanguageModel
    tts: TextToSpeech
    vision: Any = None  # voxlive.vision.base.Vision, when the profile has a vision stage
    emotion: Any = None  # voxlive.emotion.base.EmotionRecognizer, likewise
    turn_detector: Any = None  # voxlive.turn.detector.EndOfTurnDetector, or None
    load_seconds: dict[str, float] = field(default_factory=dict)
    tools: Any = None  # voxlive.tools.mcp_client.ToolManager: MCP servers, connected lazily

    async def aclose(self) -> None:
        if self.tools is not None:
            await self.tools.aclose()
        await self.llm.aclose()


def load_stage(stage: str, profile: Profile) -> tuple[Any, float]:
    """Build one stage's backend; a failure becomes a BackendError naming the stage."""
    config = getattr(profile, stage)
    started = time.perf_counter()
    try:
        backend = BUILDERS[stage](config)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(stage, f"{config.backend} failed to load: {exc}") from exc
    return backend, time.perf_counter() - started


def load_models(profile: Profile, progress: bool | None = None) -> Models:
    """Load every stage, with a progress bar on a terminal (models take seconds to load)."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    loaded: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    stages = [stage for stage in BUILDERS if getattr(profile, stage) is not None]
    with tqdm(stages, desc="loading models", unit="model", disable=not show) as bar:
        for stage in bar:
            bar.set_postfix_str(f"{stage}: {getattr(profile, stage).backend}")
            loaded[stage], seconds[stage] = load_stage(stage, profile)
            log.info("%s: %s loaded in %.2f s", stage,
                     getattr(loaded[stage], "description", "none"), seconds[stage])
    models = Models(load_seconds=seconds, **loaded)
    if profile.tools is not None and profile.tools.servers:
        from voxlive.tools.mcp_client import ToolManager

        models.tools = ToolManager(profile.tools)
    warm_up(models)
    from voxlive.sched import share

    return share(models)  # shared fairly between calls, batched where possible


def warm_up(models: Models) -> None:
    """Run STT, TTS and a local LLM once, so the first caller does not pay for lazy
    initialisation."""
    import numpy as np

    models.stt.transcribe(np.zeros(16_000, dtype=np.float32))
    for _ in models.tts.synthesize("Hello."):
        pass
    llm_warm_up = getattr(models.llm, "warm_up", None)
    if llm_warm_up is not None:
        llm_warm_up()
    if models.turn_detector is not None:
        models.turn_detector.warm_up()
