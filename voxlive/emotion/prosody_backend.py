"""The `prosody` emotion backend's entry in the registry: its models.yaml section.

The analysis itself is voxlive/emotion/prosody.py (numpy alone, no model file).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voxlive.backends.registry import Backend, Strict
from voxlive.emotion.prosody import ProsodyEmotionBackend


class ProsodyEmotion(Strict):
    """Arousal from pitch, energy, rate and pauses, normalised per caller: no model file."""

    backend: Literal["prosody"]
    min_speech_s: float = Field(0.5, gt=0, description="less voiced audio gives 'unknown'")


BACKEND = Backend(
    stage="emotion", name="prosody", config=ProsodyEmotion, factory=ProsodyEmotionBackend,
    package="numpy", install="pip install numpy", model_field=None,
)
