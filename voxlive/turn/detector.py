"""The semantic end-of-turn detector: has the user finished, from their voice and words?

Two signals, each optional, chosen by a profile's `turn_detector.backend`:
- audio (`smart-turn`): Smart Turn v3's P(complete) from the last 8 s of the utterance,
  a prosody model trained on people (voxlive/backends/turn_smart.py). It starts at the
  speculative pause, beside STT.
- text (`text`): a small chat model's P(end of message) after the speculative
  transcript's words (voxlive/backends/turn_text.py), once STT has them.
`smart-turn+text` mixes them, `audio_weight` on the audio. Smart Turn alone is fooled by
flat synthetic voices (espeak-ng), and the text alone cannot hear "I would like... a
pizza" as two clauses; the words and the voice err on different turns.

The detector's answer never costs words: the speculative STT and reply start at the
pause whatever it says; it only decides when the reply may play.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voxlive.config import TurnDetectorConfig, resolve_model
from voxlive.turn.end_of_turn import SemanticPolicy


class ProbabilityModel(Protocol):
    description: str

    def probability(self, item: Any, /) -> float: ...  # audio array or text


@dataclass(frozen=True)
class Verdict:
    complete: bool
    probability: float  # the combined P(complete)
    audio: float | None  # each signal's own, where the detector has it
    text: float | None
    audio_s: float  # each model's own time (not the wait for the transcript)
    text_s: float

    @property
    def compute_s(self) -> float:
        return self.audio_s + self.text_s


def combine(audio: float | None, text: float | None, audio_weight: float) -> float:
    """The mixed P(complete): a weighted mean of the signals present."""
    if audio is None and text is None:
        raise ValueError("no end-of-turn signal to combine")
    if audio is None:
        return float(text)  # type: ignore[arg-type]
    if text is None:
        return float(audio)
    return audio_weight * audio + (1 - audio_weight) * text


class EndOfTurnDetector:
    """One detector per process, shared by every call; both models are thread-safe."""

    def __init__(self, config: TurnDetectorConfig, audio_model: ProbabilityModel | None,
                 text_model: ProbabilityModel | None):
        self.config = config
        self.audio_model = audio_model
        self.text_model = text_model
        parts = [m.description for m in (audio_model, text_model) if m is not None]
        self.description = " + ".join(parts)

    @property
    def policy(self) -> SemanticPolicy:
        """The core's rules for this detector: when to ask, when the voice alone decides
        (only beside the words: a voice-only detector's verdict is the voice's anyway)."""
        alone = self.config.voice_alone if self.audio_model is not None else None
        return SemanticPolicy(voice_alone=alone, ask_silence_ms=self.config.ask_silence_ms)

    @property
    def needs_text(self) -> bool:
        return self.text_model is not None

    def audio_probability(self, audio: np.ndarray) -> tuple[float | None, float]:
        """(P(complete) from the voice or None, seconds). Blocking."""
        if self.audio_model is None:
            return None, 0.0
        started = time.perf_counter()
        probability = self.audio_model.probability(audio)
        return probability, time.perf_counter() - started

    def text_probability(self, text: str) -> tuple[float | None, float]:
        """(P(complete) from the words or None, seconds). Blocking."""
        if self.text_model is None:
            return None, 0.0
        started = time.perf_counter()
        probability = self.text_model.probability(text)
        return probability, time.perf_counter() - started

    def decide(self, audio: float | None, text: float | None, audio_s: float = 0.0,
               text_s: float = 0.0) -> Verdict:
        probability = combine(audio, text, self.config.audio_weight)
        return Verdict(probability >= self.config.threshold, probability, audio, text,
                       audio_s, text_s)

    def warm_up(self) -> None:
        """One verdict at start-up: onnxruntime and llama.cpp initialise lazily, and the
        text model keeps its system prompt in its cache from then on."""
        self.judge(np.zeros(16_000, np.float32), "Hello there.")

    def judge(self, audio: np.ndarray, text: str) -> Verdict:
        """Both signals, one after the other (tests and benchmarks). Blocking."""
        audio_p, audio_s = self.audio_probability(audio)
        text_p, text_s = self.text_probability(text)
        return self.decide(audio_p, text_p, audio_s, text_s)


def load_detector(config: TurnDetectorConfig) -> EndOfTurnDetector | None:
    """The detector a profile names, its models loaded; None for `none`."""
    if config.backend == "none":
        return None
    audio_model = text_model = None
    if "smart-turn" in config.backend:
        from voxlive.backends.turn_smart import SmartTurnModel

        audio_model = SmartTurnModel(resolve_model(config.model), config.cpu_threads)
    if "text" in config.backend:
        from voxlive.backends.turn_text import TextTurnModel

        text_model = TextTurnModel(resolve_model(config.text_model), config.cpu_threads)
    return EndOfTurnDetector(config, audio_model, text_model)
