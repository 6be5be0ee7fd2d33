"""Echo cancellation (voxlive.audio.aec, WebRTC AEC3 through livekit) on recorded material.

The reply and the user are espeak-ng speech; the microphone hears the reply through a
synthetic small room, 60-120 ms late and 6-12 dB down (voxlive.harness.local_echo). The
thresholds were set from what this canceller measures here, with margin: 28-34 dB of
echo reduction after convergence (asserted: 20 dB), no VAD window on the cancelled
echo, near-end speech in double talk kept within 2-4 dB (asserted: 6 dB).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.audio.aec import AecUnavailable, EchoCanceller, echo_canceller, erle_db
from voxlive.audio.resample import MODEL_RATE
from voxlive.audio.vad import WINDOW_S
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.harness.local_echo import (
    EchoCase,
    cancel,
    converged_erle,
    reply_speech,
    user_speech,
)
from voxlive.harness.speech import silence

pytest.importorskip("livekit.rtc", reason="the local extra (livekit) is not installed")
pytestmark = requires_espeak

MIN_ERLE_DB = 20.0
MAX_NEAR_LOSS_DB = 6.0


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    """The reply, as played: 10 s of espeak-ng speech and a little silence."""
    return np.concatenate([reply_speech(), silence(0.3, MODEL_RATE)])


@pytest.mark.parametrize("case", [
    EchoCase(delay_s=0.06, level_db=-6.0),
    EchoCase(delay_s=0.12, level_db=-12.0),
    EchoCase(delay_s=0.09, level_db=-9.0, room=False),
], ids=["60ms-6dB-room", "120ms-12dB-room", "90ms-9dB-direct"])
def test_the_echo_of_the_reply_is_reduced(far: np.ndarray, case: EchoCase) -> None:
    erle, mic, cancelled = converged_erle(case, far)
    print(f"\n{case}: ERLE {erle:.1f} dB over the last two thirds")
    assert erle >= MIN_ERLE_DB
    assert np.sqrt(np.mean(mic**2)) > 0.01  # there was an echo to cancel


def test_without_the_played_signal_nothing_is_cancelled(far: np.ndarray) -> None:
    """The measure can fail: the reduction comes from the reverse stream."""
    case = EchoCase()
    mic, _ = case.mic(far)
    cancelled = cancel(EchoCanceller(), np.zeros_like(far), mic, case.delay_s * 1000)
    start = len(mic) // 3
    erle = erle_db(mic[start:], cancelled[start:])
    print(f"\nwithout the reverse stream: {erle:.1f} dB")
    assert erle < 3.0


def voiced(models: Models, config: VoxliveConfig, audio: np.ndarray) -> np.ndarray:
    threshold = config.profile("embedded").vad.threshold
    return np.array(models.vad.stream().process(audio)) >= threshold


def longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def test_the_vad_fires_on_the_echo_but_not_on_what_is_left_of_it(
        far: np.ndarray, embedded_models: Models, config: VoxliveConfig) -> None:
    _, mic, cancelled = converged_erle(EchoCase(delay_s=0.08, level_db=-6.0), far)
    skip = int(1.0 / WINDOW_S)  # the first second: the canceller converges
    raw = voiced(embedded_models, config, mic)[skip:]
    left = voiced(embedded_models, config, cancelled)[skip:]
    print(f"\nvoiced 32 ms windows: echo {raw.sum()}/{len(raw)}, cancelled {left.sum()}")
    assert raw.mean() > 0.5, "the raw echo should sound like speech to the VAD"
    # A barge-in needs `barge_in_min_speech_ms` of voiced audio: none may add up to it.
    needed = config.turn.barge_in_min_speech_ms / 1000 / WINDOW_S
    assert longest_run(left) < needed
    assert left.sum() <= max(2, raw.sum() // 50)


def test_the_user_talking_over_the_reply_is_kept(
        far: np.ndarray, embedded_models: Models, config: VoxliveConfig) -> None:
    near = user_speech()
    case = EchoCase(delay_s=0.08, level_db=-6.0)
    at = int(len(far) * 0.55)  # well after convergence, while the reply still plays
    mic, echo = case.mic(far, near=near, near_at=at)
    cancelled = cancel(EchoCanceller(), far, mic, case.delay_s * 1000)
    spoken = slice(at, at + len(near))
    user = mic[spoken] - echo[spoken]  # what the microphone heard of the user
    kept_db = 10 * np.log10(np.sum(cancelled[spoken] ** 2) / np.sum(user**2))
    before = slice(at - MODEL_RATE, at)  # the second before: echo only
    echo_left = erle_db(mic[before], cancelled[before])
    heard = voiced(embedded_models, config, cancelled[spoken])
    heard_raw = voiced(embedded_models, config, user)
    print(f"\ndouble talk: the user's speech kept at {kept_db:+.1f} dB; voiced windows "
          f"{heard.sum()} (the user alone: {heard_raw.sum()}); echo before: -{echo_left:.1f} dB")
    assert kept_db >= -MAX_NEAR_LOSS_DB
    assert heard.sum() >= 0.6 * heard_raw.sum()
    assert echo_left >= MIN_ERLE_DB


def test_without_livekit_there_is_no_canceller_and_it_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "livekit", None)  # import livekit -> ImportError
    with pytest.raises(AecUnavailable, match="pip install 'voxlive\\[local\\]'"):
        EchoCanceller()
    canceller, why = echo_canceller()
    assert canceller is None and "livekit" in why


def test_pieces_of_any_length_come_out_whole() -> None:
    """10 ms frames are cut from any block length: nothing lost, nothing repeated."""
    canceller = EchoCanceller()
    rng = np.random.default_rng(3)
    given = 0
    out = []
    for size in rng.integers(1, 700, 60):
        chunk = (rng.standard_normal(size) * 0.01).astype(np.float32)
        canceller.played(chunk)
        out.append(canceller.captured(chunk))
        given += size
    total = sum(len(o) for o in out)
    assert total == given // canceller.frame * canceller.frame
