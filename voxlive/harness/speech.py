"""Spoken test material made on the spot with espeak-ng (no recordings to ship)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np

from voxlive.audio.resample import resample_once


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(text: str, rate: int, words_per_minute: int = 160, pitch: int = 50,
           voice: str = "en-us") -> np.ndarray:
    """`text` spoken by espeak-ng, as float32 mono at `rate`."""
    wav_bytes = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch),
         "--", text],
        capture_output=True, check=True, timeout=30,
    ).stdout
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        source_rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return resample_once(pcm.astype(np.float32) / 32768.0, source_rate, rate)


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def write_wav(path: str, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
