"""espeak-ng formant synthesis: the TTS that needs no model file (Debian package espeak-ng)."""

from __future__ import annotations

import io
import subprocess
import threading
import wave
from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import Field

from voxlive.backends.base import BackendError
from voxlive.backends.registry import Backend, Strict

STYLE_RATE_PITCH = {"default": (1.0, 0), "cheerful": (1.12, 10), "calm": (0.88, -8)}
"""Reply style -> (words-per-minute factor, pitch offset)."""


class EspeakTts(Strict):
    backend: Literal["espeak-ng"]
    voice: str = "en-us"
    words_per_minute: int = Field(175, ge=80, le=450)
    pitch: int = Field(50, ge=0, le=99)


class EspeakTTS:
    sample_rate = 22_050

    def __init__(self, config: EspeakTts):
        self.config = config
        self.description = f"espeak-ng voice {config.voice}"

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        """One espeak-ng run per sentence (milliseconds): `stop` has nothing to cut."""
        rate, pitch = STYLE_RATE_PITCH.get(style, (1.0, 0))
        command = [
            "espeak-ng", "--stdout",
            "-v", self.config.voice,
            "-s", str(round(self.config.words_per_minute * rate)),
            "-p", str(min(99, max(0, self.config.pitch + pitch))),
            "--", text,
        ]
        try:
            result = subprocess.run(command, capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise BackendError("tts", f"espeak-ng failed: {exc}") from exc
        with wave.open(io.BytesIO(result.stdout)) as wav:
            self.sample_rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        yield pcm.astype(np.float32) / 32768.0


BACKEND = Backend(
    stage="tts", name="espeak-ng", config=EspeakTts, factory=EspeakTTS,
    program="espeak-ng", install="apt-get install espeak-ng", model_field=None,
)
