"""Smart Turn's input features (voxlive/backends/turn_smart.py) against faster-whisper's
FeatureExtractor, the reference they replace (itself within 6e-6 of pipecat's): the
same log-mel, on speech, on silence and at any length."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from tests.conftest import requires_espeak
from voxlive.backends.turn_smart import whisper_log_mel
from voxlive.harness.speech import espeak


def reference(audio: np.ndarray) -> np.ndarray:
    extractor = FeatureExtractor(feature_size=80, chunk_length=8)
    return extractor(audio, padding=0)


@requires_espeak
def test_the_log_mel_matches_faster_whisper_on_speech() -> None:
    speech = espeak("What is the capital of France?", 16_000)
    audio = np.concatenate([np.zeros(128_000 - speech.size, np.float32), speech])
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    ours, theirs = whisper_log_mel(audio), reference(audio)
    assert ours.shape == theirs.shape == (80, 800)
    assert np.abs(ours - theirs).max() < 1e-4
    assert ours.max() - ours.min() > 1.0  # speech, not a flat floor


@pytest.mark.parametrize("samples", [16_000, 16_080, 3_333])
def test_the_log_mel_matches_at_any_length(samples: int) -> None:
    noise = np.random.default_rng(samples).normal(0, 0.1, samples).astype(np.float32)
    ours, theirs = whisper_log_mel(noise), reference(noise)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-4


def test_silence_is_the_floor_everywhere() -> None:
    ours = whisper_log_mel(np.zeros(16_000, np.float32))
    np.testing.assert_allclose(ours, reference(np.zeros(16_000, np.float32)), atol=1e-6)
