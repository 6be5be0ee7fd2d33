"""Silero VAD for real, and endpointing by the turn core on its decisions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.audio.vad import WINDOW_S, SileroVad
from voxlive.backends.packaged import resolve_packaged
from voxlive.config import TurnSettings
from voxlive.harness.speech import espeak, silence
from voxlive.turn.core import (
    ReplyPlayed,
    Respond,
    SpeechStarted,
    Transcribe,
    Transcribed,
    TurnCore,
    VadWindow,
)

RATE = 16_000


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad(str(resolve_packaged("pip:faster-whisper")))


def probabilities(vad: SileroVad, audio: np.ndarray, chunk: int = 320) -> list[float]:
    """Feed the audio in 20 ms pieces, as a call does."""
    stream = vad.stream()
    out: list[float] = []
    for i in range(0, len(audio), chunk):
        out += stream.process(audio[i : i + chunk])
    return out


def run_core(probs: list[float], **settings: object) -> list[object]:
    """Replay VAD decisions; each turn is answered at once by an instant, silent reply."""
    core = TurnCore(TurnSettings(**settings))
    actions: list[object] = []
    for i, p in enumerate(probs):
        out = core.handle(VadWindow(round((i + 1) * WINDOW_S, 6), p, WINDOW_S))
        for action in out:
            if isinstance(action, Transcribe):
                out += core.handle(Transcribed(action.generation, "words"))
            if isinstance(action, Respond):
                out += core.handle(ReplyPlayed(action.generation))
        actions += out
    return actions


def tone(hz: float, seconds: float, level: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_one_probability_per_32ms_window_whatever_the_chunking(vad: SileroVad) -> None:
    audio = np.random.default_rng(0).uniform(-0.01, 0.01, RATE * 2).astype(np.float32)
    by_20ms = probabilities(vad, audio, 320)
    by_100ms = probabilities(vad, audio, 1600)
    assert len(by_20ms) == len(by_100ms) == len(audio) // 512
    assert np.allclose(by_20ms, by_100ms, atol=1e-5)


@pytest.mark.parametrize(
    "signal",
    [silence(3, RATE), tone(440, 3, 0.5), tone(1000, 3, 0.3),
     (0.05 * np.random.default_rng(1).standard_normal(RATE * 3)).astype(np.float32)],
    ids=["silence", "tone-440Hz", "tone-1kHz", "white-noise"],
)
def test_tones_noise_and_silence_start_no_turn(vad: SileroVad, signal: np.ndarray) -> None:
    probs = probabilities(vad, signal)
    assert max(probs) < 0.5
    assert [a for a in run_core(probs) if isinstance(a, SpeechStarted)] == []


@requires_espeak
def test_speech_is_one_turn_ending_after_the_silence(vad: SileroVad) -> None:
    speech = espeak("What is the capital of France?", RATE)
    audio = np.concatenate([silence(1.0, RATE), speech, silence(1.5, RATE)])
    actions = run_core(probabilities(vad, audio), end_of_turn_silence_ms=480, pre_roll_ms=160)
    [started] = [a for a in actions if isinstance(a, SpeechStarted)]
    [turn] = [a for a in actions if isinstance(a, Transcribe)]
    speech_end = 1.0 + len(speech) / RATE
    assert 0.9 <= started.t <= 1.3  # onset within the first words
    assert turn.start <= 1.0  # the pre-roll covers the first syllable
    assert speech_end - 0.4 <= turn.last_voiced <= speech_end + 0.1
    assert turn.end >= turn.last_voiced


@requires_espeak
def test_two_sentences_with_a_long_pause_are_two_turns(vad: SileroVad) -> None:
    audio = np.concatenate([
        silence(0.5, RATE), espeak("Hello there.", RATE), silence(1.5, RATE),
        espeak("How are you today?", RATE), silence(1.0, RATE),
    ])
    turns = [a for a in run_core(probabilities(vad, audio)) if isinstance(a, Transcribe)]
    assert len(turns) == 2
    assert turns[0].end <= turns[1].start + 0.2  # separate spans of audio
    assert turns[1].start > 1.5
