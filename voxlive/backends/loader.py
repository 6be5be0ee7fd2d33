"""Builds the backends a profile names, once per process, with a progress bar.

Which class serves a stage is the backend registry's business (voxlive/backends/
registry.py): a stage's builder looks up the backend its config names and calls its
factory. Only the turn detector, one config for its combinations of signals, is built
here by hand.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from voxlive.audio.vad import SileroVad
from voxlive.backends.base import BackendError, LanguageModel, SpeechToText, TextToSpeech
from voxlive.backends.registry import STAGES, backend
from voxlive.config import Profile
from voxlive.config.checks import missing_package
from voxlive.emotion.base import EmotionRecognizer
from voxlive.vision.base import Vision

if TYPE_CHECKING:
    from voxlive.tools.mcp_client import ToolManager
    from voxlive.turn.detector import EndOfTurnDetector

log = logging.getLogger(__name__)


def build(stage: str, config: Any) -> Any:
    """The backend the config names, loaded; a missing package is named with its extra."""
    declared = backend(stage, config.backend)
    try:
        return declared.factory(config)
    except ImportError:
        missing = missing_package(declared)
        if missing:
            raise BackendError(stage, missing) from None
        raise


def _build_turn_detector(config: Any) -> Any:
    from voxlive.turn.detector import load_detector

    return load_detector(config)  # None for `none`: turns end on silence alone


BUILDERS: dict[str, Callable[[Any], Any]] = {
    **{stage: partial(build, stage) for stage in STAGES},
    "turn_detector": _build_turn_detector,
}
"""Stage -> builder, in loading order."""


@dataclass
class Models:
    """The loaded models of one profile; one instance per process, shared by every call."""

    vad: SileroVad
    stt: SpeechToText
    llm: LanguageModel
    tts: TextToSpeech
    vision: Vision | None = None  # when the profile has a vision stage
    emotion: EmotionRecognizer | None = None  # likewise
    turn_detector: EndOfTurnDetector | None = None  # None: turns end on silence alone
    load_seconds: dict[str, float] = field(default_factory=dict)
    tools: ToolManager | None = None  # MCP servers, connected lazily

    async def aclose(self) -> None:
        if self.tools is not None:
            await self.tools.aclose()
        await self.llm.aclose()


def load_stage(stage: str, profile: Profile) -> tuple[Any, float]:
    """Build one stage's backend; a failure becomes a BackendError naming the stage."""
    config = getattr(profile, stage)
    started = time.perf_counter()
    try:
        loaded = BUILDERS[stage](config)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(stage, f"{config.backend} failed to load: {exc}") from exc
    return loaded, time.perf_counter() - started


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
            description = "none" if loaded[stage] is None else loaded[stage].description
            log.info("%s: %s loaded in %.2f s", stage, description, seconds[stage])
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
    models.llm.warm_up()
    if models.turn_detector is not None:
        models.turn_detector.warm_up()
