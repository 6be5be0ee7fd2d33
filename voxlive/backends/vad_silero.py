"""The `silero` VAD backend: Silero VAD v6 (ONNX) through onnxruntime.

The detector itself is voxlive/audio/vad.py (the audio path's, typed strictly); this
module is its entry in the backend registry: its models.yaml section and its factory.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict


class SileroVad(Strict):
    backend: Literal["silero"]
    model: str = "pip:faster-whisper"
    threshold: float = Field(0.5, gt=0, lt=1)


def load(config: SileroVad) -> object:
    from voxlive.audio.vad import SileroVad as SileroDetector

    return SileroDetector(resolve_model(config.model))


BACKEND = Backend(
    stage="vad", name="silero", config=SileroVad, factory=load,
    package="onnxruntime", install="pip install onnxruntime",
)
