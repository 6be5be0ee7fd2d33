"""n-best rescoring (voxlive/backends/stt_rescore.py) with the real SmolLM2-135M and tiny.en."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.backends.packaged import resolve_model
from voxlive.backends.stt_rescore import Hypothesis, HypothesisRescorer
from voxlive.backends.stt_whisper import FasterWhisperSTT, Rescore
from voxlive.config import FasterWhisperStt
from voxlive.harness.speech import espeak, silence

pytestmark = pytest.mark.models


@pytest.fixture(scope="session")
def rescorer() -> HypothesisRescorer:
    return HypothesisRescorer(resolve_model(Rescore().model), weight=Rescore().weight)


def test_reusing_the_context_gives_the_same_probabilities(rescorer: HypothesisRescorer) -> None:
    """Each sentence keeps what the context holds of it: the result must not depend on
    what was scored before."""
    first = rescorer.log_probability("what is the capital of france")
    rescorer.log_probability("what is the capital and friends")  # shares 4 words
    rescorer.log_probability("spiders have eight legs")  # shares nothing
    again = rescorer.log_probability("what is the capital of france")
    rescorer.llama.reset()
    fresh = rescorer.log_probability("what is the capital of france")
    assert again == pytest.approx(first, abs=1e-3)
    assert fresh == pytest.approx(first, abs=1e-3)
    assert first < 0
    assert rescorer.log_probability("what is the capital of france") > \
        rescorer.log_probability("what is the capital and friends") + 5


def test_the_words_a_person_would_say_win_a_close_call(rescorer: HypothesisRescorer) -> None:
    """Whisper's scores as tiny.en gave them for an espeak-ng voice (7 tokens each)."""
    heard = [Hypothesis("What is the capital and friends?", -0.21 * 7),
             Hypothesis("What is the capital on France?", -0.359 * 7),
             Hypothesis("What is the capital of France?", -0.422 * 7)]
    assert rescorer.pick(heard).text == "What is the capital of France?"


def test_a_clear_lead_of_whisper_stays(rescorer: HypothesisRescorer) -> None:
    """Two readings a person could say: Whisper's lead decides."""
    heard = [Hypothesis("Which city do I live in?", -0.402 * 7),
             Hypothesis("Which city do you live in?", -0.9 * 7)]
    assert rescorer.pick(heard).text == "Which city do I live in?"


def test_words_whisper_heard_at_a_pause_are_not_cut_off(rescorer: HypothesisRescorer) -> None:
    """tiny.en's 5 best at a thinking pause (espeak-ng, 160 words/min): SmolLM2 likes the
    finished sentence by far (-17.6 against -33.9), and would drop the "and" that tells
    the end-of-turn signal the user is not done."""
    heard = [Hypothesis("My favorite color is blue and...", -2.04),
             Hypothesis("My favorite color is blue and.", -3.40),
             Hypothesis("My favorite color is blue.", -3.41)]
    assert rescorer.pick(heard).text == "My favorite color is blue and..."


def test_spelling_variants_are_not_a_choice(rescorer: HypothesisRescorer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scoring(tokens: list[int]) -> tuple[float, float]:
        raise AssertionError("scored variants of one sentence")

    monkeypatch.setattr(rescorer, "_read", no_scoring)
    heard = [Hypothesis("What is my name?", -2.0), Hypothesis("what is my name", -2.5),
             Hypothesis("What is my name.", -2.9)]
    assert rescorer.pick(heard) is heard[0]


@requires_espeak
def test_the_short_window_hears_a_phrase_right_that_it_mishears_alone() -> None:
    """In this espeak-ng voice tiny.en's best short-window hypothesis is "capital and
    friends" (test_stt_window.py); "capital of France" is further down its beam."""
    audio = np.concatenate([silence(0.16, 16_000),
                            espeak("What is the capital of France?", 16_000, 160, 50),
                            silence(0.1, 16_000)])
    config = FasterWhisperStt(backend="faster-whisper", beam_size=5)
    plain = FasterWhisperSTT(config)._short.recognise(audio)
    rescored = FasterWhisperSTT(config.model_copy(update={"rescore": Rescore()}))
    heard = rescored._short.recognise(audio)
    assert plain is not None and "capital and friends" in plain[0].text.lower()
    assert heard is not None and "capital of france" in heard[0].text.lower()
    # The confidence is still Whisper's best hypothesis's (barge-in and the language
    # fallback read it as "are these English words").
    assert heard[0].confidence == pytest.approx(plain[0].confidence, abs=1e-6)


def test_rescoring_needs_a_beam_search() -> None:
    with pytest.raises(ValueError, match="beam_size to 2 or more"):
        FasterWhisperStt(backend="faster-whisper", beam_size=1, rescore=Rescore())


def test_the_picked_transcript_comes_with_the_text_models_end_signal(
        rescorer: HypothesisRescorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The turn detector's text model reads the same words over the same prefix: the
    rescorer leaves its end signal, and it is the one the text model computes itself."""
    from voxlive.backends import turn_text

    monkeypatch.setattr(turn_text, "KNOWN_ENDS", turn_text.KnownEnds())
    monkeypatch.setattr("voxlive.backends.stt_rescore.KNOWN_ENDS", turn_text.KNOWN_ENDS)
    text_model = turn_text.TextTurnModel(rescorer.model_path)
    finished = rescorer.pick([Hypothesis("What is the capital of France?", -1.5),
                              Hypothesis("What is the capital of friends?", -2.5)])
    cut = rescorer.pick([Hypothesis("I would like to know the", -2.0),
                         Hypothesis("I would like to know if", -2.1)])
    known = {words: turn_text.KNOWN_ENDS.recall(rescorer.model_path, turn_text.normalise(words))
             for words in (finished.text, cut.text)}
    turn_text.KNOWN_ENDS = turn_text.KnownEnds()  # the text model computes them itself
    for words, signal in known.items():
        assert signal == pytest.approx(text_model.probability(words), abs=0.02)
    assert known[finished.text] > 0.5 > known[cut.text]


def test_known_end_signals_are_kept_per_model_and_bounded() -> None:
    from voxlive.backends.turn_text import KnownEnds

    known = KnownEnds(size=2)
    known.remember("a.gguf", "what is my name", 0.9)
    assert known.recall("b.gguf", "what is my name") is None
    known.remember("a.gguf", "i would like", 0.1)
    known.remember("a.gguf", "hello", 0.7)
    assert known.recall("a.gguf", "what is my name") is None  # the oldest went
    assert known.recall("a.gguf", "hello") == 0.7


@requires_espeak
def test_a_batch_rescores_and_prepares_as_the_backend_does_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Several calls' utterances in one Whisper pass (serving/stt_batch.py) get the same
    words as each alone: suppressed first where the backend suppresses, rescored."""
    from voxlive.audio import aec
    from voxlive.serving.stt_batch import recognise_batch

    try:
        aec._livekit_rtc()
    except aec.AecUnavailable as exc:
        pytest.skip(f"no WebRTC noise suppression here: {exc}")
    stt = FasterWhisperSTT(FasterWhisperStt(backend="faster-whisper", beam_size=5,
                                            denoise=True, rescore=Rescore()))
    audios = [np.concatenate([silence(0.16, 16_000), espeak(text, 16_000, 160, 50),
                              silence(0.1, 16_000)])
              for text in ("What is the capital of France?", "What do bees make?")]
    alone = [stt.recognise(audio) for audio in audios]
    prepared: list[int] = []
    real = stt.prepare
    monkeypatch.setattr(stt, "prepare", lambda audio: prepared.append(audio.size) or real(audio))
    batched = recognise_batch(stt, audios)
    assert prepared == [audio.size for audio in audios]
    assert [t.text for t in batched] == [t.text for t in alone]
    assert "capital of france" in batched[0].text.lower()
    for one, other in zip(batched, alone, strict=True):
        assert one.confidence == pytest.approx(other.confidence, abs=0.02)
