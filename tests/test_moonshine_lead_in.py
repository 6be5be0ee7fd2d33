"""The quiet start Moonshine is spared (voxlive/backends/stt_moonshine.py)."""

from __future__ import annotations

import numpy as np

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.stt_moonshine import LEAD_IN_S, without_long_lead_in


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * MODEL_RATE)) / MODEL_RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_long_quiet_start_is_cut_to_the_lead_in() -> None:
    quiet = np.full(3 * MODEL_RATE, 1e-4, np.float32)  # faint hiss, 70 dB under the tone
    audio = np.concatenate([quiet, tone(1.0), np.zeros(MODEL_RATE, np.float32)])
    kept = without_long_lead_in(audio)
    assert kept.size == audio.size - quiet.size + int(LEAD_IN_S * MODEL_RATE)
    np.testing.assert_array_equal(kept[-2 * MODEL_RATE:], audio[-2 * MODEL_RATE:])


def test_a_short_quiet_start_and_quiet_audio_are_left_alone() -> None:
    audio = np.concatenate([np.zeros(MODEL_RATE // 10, np.float32), tone(1.0)])
    assert without_long_lead_in(audio).size == audio.size
    silent = np.zeros(MODEL_RATE, np.float32)
    assert without_long_lead_in(silent).size == silent.size
    assert without_long_lead_in(np.zeros(0, np.float32)).size == 0
