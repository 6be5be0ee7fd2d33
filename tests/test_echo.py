"""The echo guard on recorded material: the reply mixed back into the microphone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.audio.echo import EchoGuard, correlation
from voxlive.audio.output import FRAME_SAMPLES
from voxlive.audio.resample import CALL_RATE, MODEL_RATE, resample_once, to_int16
from voxlive.harness.speech import espeak

pytestmark = requires_espeak

REPLY = "The capital of France is Paris. It is a beautiful city with many museums."
USER = "Wait, stop, I have another question for you."


@pytest.fixture(scope="module")
def reply_48k() -> np.ndarray:
    return espeak(REPLY, CALL_RATE)


def run_guard(reply_48k: np.ndarray, mic_16k_of: Callable[[np.ndarray], np.ndarray],
              user: np.ndarray | None = None) -> list[bool]:
    """Play the reply frame by frame on a fake clock; the mic hears `mic_16k_of(played)`.
    With `user`, only the checks where the user is talking are returned."""
    guard = EchoGuard(threshold=0.6)
    played_16k = resample_once(reply_48k, CALL_RATE, MODEL_RATE)
    mic = mic_16k_of(played_16k)
    decisions = []
    for i in range(len(reply_48k) // FRAME_SAMPLES):
        at = i * 0.02
        guard.played(at, to_int16(reply_48k[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]))
        guard.heard(mic[i * 320 : (i + 1) * 320])
        if i % 5 == 4:  # check every 100 ms, as the VAD would on voiced windows
            end = (i + 1) * 320
            talking = user is None or np.sqrt(np.mean(user[end - 1600 : end] ** 2)) > 0.03
            if talking:
                decisions.append(guard.is_echo(at + 0.02))
    return decisions


def delayed(signal: np.ndarray, seconds: float, gain: float) -> np.ndarray:
    shift = int(seconds * MODEL_RATE)
    return gain * np.concatenate([np.zeros(shift, np.float32), signal])[: len(signal)]


@pytest.mark.parametrize("delay", [0.04, 0.15, 0.35])
@pytest.mark.parametrize("gain", [0.1, 0.3, 1.0])
def test_the_reply_coming_back_is_echo_at_any_level_and_delay(reply_48k, delay, gain) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    decisions = run_guard(reply_48k, lambda played: delayed(played, delay, gain)
                          + 0.001 * rng.standard_normal(len(played)).astype(np.float32))
    voiced = decisions[int(delay * 10) + 3 :]  # once the echo has arrived
    assert sum(voiced) / len(voiced) >= 0.9


def test_the_user_talking_is_not_echo(reply_48k) -> None:  # noqa: ANN001
    user = espeak(USER, MODEL_RATE, pitch=25)
    decisions = run_guard(reply_48k, lambda played: np.resize(user, len(played)))
    assert sum(decisions) == 0


def test_the_user_talking_over_a_quieter_echo_is_not_echo(reply_48k) -> None:  # noqa: ANN001
    user = espeak(USER, MODEL_RATE, pitch=25)
    played_length = len(resample_once(reply_48k, CALL_RATE, MODEL_RATE))
    user = np.resize(user, played_length)

    def mix(played: np.ndarray) -> np.ndarray:
        return delayed(played, 0.12, 0.25) + user

    decisions = run_guard(reply_48k, mix, user=user)
    assert len(decisions) > 10
    assert sum(decisions) / len(decisions) <= 0.15


def test_correlation_is_one_for_a_copy_and_low_for_noise() -> None:
    rng = np.random.default_rng(3)
    reference = rng.standard_normal(8000).astype(np.float32)
    assert correlation(reference[2000:5200] * 0.1, reference) > 0.99
    assert correlation(rng.standard_normal(3200).astype(np.float32), reference) < 0.15
    assert correlation(np.zeros(3200, np.float32), reference) == 0.0
