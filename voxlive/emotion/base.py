"""What every emotion recogniser returns, and the protocol it follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16_000
"""Recognisers get the user's turn as the VAD and STT do: 16 kHz mono float32."""

UNKNOWN = "unknown"
"""The label for a turn with too little speech to judge (silence, a cough, noise)."""


@dataclass(frozen=True)
class Emotion:
    """One user turn's estimate.

    label: the most likely label, or UNKNOWN.
    confidence: 0..1, how sure the backend is of `label` (0.0 for UNKNOWN).
    scores: every label's score, summing to 1 (empty for UNKNOWN).
    backend: which backend made it (its `description`).
    arousal: -1 (calm, flat, slow) .. +1 (excited), where the backend estimates it.
    """

    label: str
    confidence: float
    scores: dict[str, float]
    backend: str
    arousal: float | None = None

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN


def unknown(backend: str) -> Emotion:
    """The answer for silence or too little speech: never an exception, never a guess."""
    return Emotion(UNKNOWN, 0.0, {}, backend, None)


class EmotionRecognizer(Protocol):
    description: str

    def new_speaker(self) -> object:
        """Per-call state (e.g. the caller's own baseline); None for stateless backends.

        The runtime makes one per call and hands it back with every turn of that call.
        """
        ...

    def analyse(self, audio: np.ndarray, speaker: object) -> Emotion:
        """Estimate one user turn of 16 kHz mono float32 audio. Blocking: the runtime calls
        it in a worker thread. Silence and too-short audio give UNKNOWN, never an error."""
        ...


def as_mono_float32(audio: np.ndarray) -> np.ndarray:
    """The turn as a 1-D, finite float32 array (NaN and inf, which no real microphone
    makes but a broken resampler might, become 0 rather than poisoning every feature)."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if samples.size and not np.isfinite(samples).all():
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    return samples
