"""The end-of-turn detector's real loading code on the real models: Smart Turn v3.2 (the
ONNX file inside the pipecat-ai wheel) and SmolLM2's sentence-end probability, on real
human recordings and on espeak-ng speech.

Human speech: prompts of the Debian package asterisk-core-sounds-en (16 kHz G.722, one
professional voice), from the real-speech corpus (voxlive/harness/real_speech.py fetches it
from the registries into a cache). The examples were picked where they hold with margin
(measured here: complete 0.97-0.99, cut 0.012-0.03, against the 0.5 threshold); the cut
points are word ends found once with faster-whisper word timestamps and written down, so
the test needs no STT.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.config import TurnDetectorConfig
from voxlive.harness.speech import espeak
from voxlive.harness.turn_corpus import asterisk_prompts, silence, trim
from voxlive.turn.detector import EndOfTurnDetector, combine, load_detector

# (prompt, its words, the second where the cut ends: just after the word before "|")
HUMAN = (
    ("conf-invalidpin", "That pin is invalid for | this conference.", 1.69),
    ("dir-multi9", "Press 9 for | more entries.", 1.17),
    ("conf-onlyperson", "You are currently the only person in | this conference.", 2.13),
    ("check-number-dial-again", "Please check the number and | dial again.", 1.45),
)


@pytest.fixture(scope="session")
def detector() -> EndOfTurnDetector:
    loaded = load_detector(TurnDetectorConfig(backend="smart-turn+text"))
    assert loaded is not None and loaded.audio_model is not None
    return loaded


@pytest.fixture(scope="session")
def human() -> dict[str, tuple[str, np.ndarray]]:
    try:
        return asterisk_prompts(tuple(name for name, _, _ in HUMAN))
    except RuntimeError as exc:  # real_speech.CorpusError: no apt-get, no network
        pytest.skip(f"real human speech unavailable: {exc}")


def test_loading_checks_the_model_file(tmp_path) -> None:  # noqa: ANN001
    from voxlive.backends.turn_smart import SmartTurnModel

    wrong = tmp_path / "not-smart-turn.onnx"
    wrong.write_bytes(b"not an onnx model")
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime's own error type
        SmartTurnModel(str(wrong))
    assert load_detector(TurnDetectorConfig(backend="none")) is None


@pytest.mark.parametrize(("name", "words", "cut_s"), HUMAN)
def test_a_complete_recording_scores_complete_and_its_cut_incomplete(
        detector: EndOfTurnDetector, human: dict[str, tuple[str, np.ndarray]], name: str,
        words: str, cut_s: float) -> None:
    _text, audio = human[name]
    tail = silence(0.1)  # what the detector hears: the utterance and 100 ms after it
    complete, _ = detector.audio_probability(np.concatenate([trim(audio, 0.005), tail]))
    cut, _ = detector.audio_probability(
        np.concatenate([audio[: int(cut_s * 16_000)], tail]))
    assert complete is not None and cut is not None
    assert complete > 0.8, (words, complete)
    assert cut < 0.2, (words, cut)


def test_the_text_signal_hears_a_sentence_end(detector: EndOfTurnDetector) -> None:
    finished, _ = detector.text_probability("What is the capital of France?")
    unfinished, _ = detector.text_probability("I would like to")
    assert finished is not None and unfinished is not None
    assert finished > 0.8 and unfinished < 0.1
    assert detector.text_probability("")[0] == 0.0  # no words: nothing is finished


# espeak-ng (words per minute, pitch) cases where Smart Turn alone is wrong: its flat
# prosody makes unfinished phrases sound finished (0.94 here, against the 0.75 threshold).
# The words say otherwise, and the mix (audio weight 0.7) lands at 0.66-0.67.
ESPEAK_AUDIO_WRONG = (
    ("Please remind me to buy", 185, 70),
    ("Please remind me to buy", 145, 60),
    ("My favourite colour is blue and", 185, 70),
)


@requires_espeak
@pytest.mark.parametrize(("text", "wpm", "pitch"), ESPEAK_AUDIO_WRONG)
def test_the_words_overrule_the_voice_where_espeak_fools_it(
        detector: EndOfTurnDetector, text: str, wpm: int, pitch: int) -> None:
    threshold = detector.config.threshold
    audio = np.concatenate([silence(0.16), trim(espeak(text, 16_000, wpm, pitch)),
                            silence(0.1)])
    verdict = detector.judge(audio, text)
    assert verdict.audio is not None and verdict.text is not None
    assert verdict.audio > threshold, f"Smart Turn heard {text!r} right this time"
    assert not verdict.complete, verdict  # the mix: not finished, no premature reply
    assert verdict.probability < threshold - 0.05, verdict


def test_combine_mixes_what_is_there() -> None:
    assert combine(0.2, 0.8, 0.25) == pytest.approx(0.65)
    assert combine(None, 0.3, 0.5) == 0.3
    assert combine(0.7, None, 0.5) == 0.7
    with pytest.raises(ValueError):
        combine(None, None, 0.5)
