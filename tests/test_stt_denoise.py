"""Noise suppression before Whisper (`stt.denoise`, voxlive/audio/denoise.py) on the real
tiny.en and livekit's WebRTC audio processing. A skip says livekit is missing."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.audio import aec, denoise
from voxlive.backends.stt_whisper import FasterWhisperSTT, _check_denoise
from voxlive.bench.hearing import pink_noise
from voxlive.config import FasterWhisperStt
from voxlive.harness.speech import espeak, silence

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def denoising_stt() -> FasterWhisperSTT:
    try:
        aec._livekit_rtc()
    except aec.AecUnavailable as exc:
        pytest.skip(f"no WebRTC noise suppression here: {exc}")
    return FasterWhisperSTT(FasterWhisperStt(backend="faster-whisper", beam_size=5,
                                             denoise=True))


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


@requires_espeak
def test_the_noise_goes_and_the_words_stay(denoising_stt: FasterWhisperSTT) -> None:
    speech = np.concatenate([silence(0.5, 16_000),
                             espeak("How many legs does a spider have?", 16_000),
                             silence(0.5, 16_000)])
    noise = pink_noise(speech.size, seed=1)
    noisy = (speech + noise * 0.1 * rms(speech) / rms(noise)).astype(np.float32)
    cleaned = denoising_stt.prepare(noisy)
    assert cleaned.dtype == np.float32 and cleaned.size == noisy.size
    tail = slice(-6_000, None)  # the last 0.4 s: noise alone, the estimate settled
    assert rms(cleaned[tail]) < 0.5 * rms(noisy[tail])
    assert "spider" in denoising_stt.recognise(noisy).text.lower()


def test_without_denoise_the_audio_is_untouched() -> None:
    stt = FasterWhisperSTT.__new__(FasterWhisperSTT)  # prepare() reads the config only
    stt.config = FasterWhisperStt(backend="faster-whisper")
    audio = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    assert stt.prepare(audio) is audio


def test_a_missing_livekit_is_a_clear_error_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> None:
        raise aec.AecUnavailable("no module named 'livekit'")

    monkeypatch.setattr(denoise, "_livekit_rtc", unavailable)
    with pytest.raises(ValueError, match="stt.denoise needs WebRTC's audio processing.*"
                                         "denoise: false"):
        _check_denoise()
