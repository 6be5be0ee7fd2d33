"""The language kept per call (voxlive/backends/call_language.py), with a scripted STT."""

from __future__ import annotations

import numpy as np

from voxlive.backends.base import Transcript
from voxlive.backends.call_language import CallLanguage, plain_words


class EnglishOnlySTT:
    """A test double with the plain interface: it takes no language, and says none."""

    description = "english only (scripted)"

    def __init__(self, *script: Transcript):
        self.script = list(script)

    def recognise(self, audio: np.ndarray) -> Transcript:
        return self.script.pop(0)


class ToldSTT(EnglishOnlySTT):
    """A test double that records the language it is told."""

    def __init__(self, *script: Transcript):
        super().__init__(*script)
        self.told: list[str | None] = []

    def recognise(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        self.told.append(language)
        return super().recognise(audio)


AUDIO = np.zeros(1600, np.float32)


def test_an_stt_whose_transcripts_carry_no_language_is_never_told_one() -> None:
    call = CallLanguage()
    stt = EnglishOnlySTT(Transcript("What is the capital of France?", 0.9),
                         Transcript("Thanks.", 0.9))
    assert [call.recognise(stt, AUDIO).text for _ in range(2)] == [
        "What is the capital of France?", "Thanks."]
    assert call.language is None


def test_the_call_keeps_a_language_until_three_words_say_another() -> None:
    call = CallLanguage()
    stt = ToldSTT(Transcript("¿Cuál es la capital de España?", 0.7, language="es"),
                  Transcript("Okay.", 0.8),  # one word: still Spanish
                  Transcript("Ducey Sank!", 0.6),  # two: still Spanish
                  Transcript("Hola.", 0.5, language="es"),
                  Transcript("Can we speak English?", 0.9),
                  Transcript("Yes.", 0.9))
    for _ in range(6):
        call.recognise(stt, AUDIO)
    assert stt.told == [None, "es", "es", "es", "es", None]
    assert call.language is None


def test_words_are_counted_without_punctuation_or_accents() -> None:
    assert plain_words("¡Quelo!") == ["quelo"]
    assert plain_words("Tic !") == ["tic"]
    assert plain_words("Qu'est-ce que c'est ?") == ["qu", "est", "ce", "que", "c", "est"]
    assert plain_words("Número de teléfono.") == ["numero", "de", "telefono"]


def test_a_client_may_say_the_language_if_the_stt_hears_it() -> None:
    stt = ToldSTT(Transcript("Oui.", 0.6, language="fr"))
    stt.languages = ["de", "es", "fr"]  # type: ignore[attr-defined]
    call = CallLanguage()
    call.prefer("fr", stt)
    assert call.language == "fr"
    call.prefer("it", stt)  # not one it hears: its own language
    assert call.language is None
    call.prefer("fr", EnglishOnlySTT())  # an STT that hears no other language
    assert call.language is None
