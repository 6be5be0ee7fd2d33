"""When the multilingual model's transcript replaces the English model's
(voxlive/backends/stt_languages.py `other_language`), on transcripts measured on the
embedded profile's models (the hearing bench's clips and the quality set's turns)."""

from __future__ import annotations

from voxlive.backends.base import Transcript
from voxlive.backends.stt_languages import other_language, shared_words

LEAST, MARGIN = 0.45, 0.1


def choose(english: tuple[str, float], call: str | None = None,
           **heard: tuple[str, float]) -> str | None:
    return other_language(Transcript(*english),
                          {language: Transcript(*t) for language, t in heard.items()},
                          LEAST, MARGIN, call)


def test_a_question_in_another_language_wins_over_english_sounding_words() -> None:
    assert choose(("Okay, let's copy, copy, copy, copy.", 0.39),
                  fr=("Quel est la capitale de l'Italie ?", 0.55),
                  es=("que le va capital de mi tali", 0.30)) == "fr"
    assert choose(("must be helped start fondoid shunt.", 0.52),
                  de=("Was ist die Hauptstadt von Deutschland?", 0.75)) == "de"


def test_english_heard_a_little_surer_in_another_language_stays_english() -> None:
    assert choose(("It's time for 10 minutes!", 0.46),
                  fr=("Set à timer 14 minutes.", 0.50)) is None
    assert choose(("and BS.", 0.52), de=("NBF", 0.58)) is None


def test_the_same_english_words_in_another_language_stay_english() -> None:
    # Surer by more than the margin, but the words are tiny.en's own (accents aside).
    assert choose(("NBA.", 0.36), es=("NBA", 0.55)) is None
    assert choose(("extension.", 0.40), es=("extensión", 0.62)) is None


def test_an_unsure_other_language_never_wins() -> None:
    assert choose(("We feel it's time to market.", 0.20),
                  de=("Neteeler Tagener, Tagener Morker", 0.40)) is None
    assert choose(("Hello there.", 0.30)) is None  # nothing heard in the other languages


def test_shared_words_ignore_case_accents_and_punctuation() -> None:
    assert shared_words("Extensión", "extension.") == 1.0
    assert shared_words("Set à timer 14 minutes.", "Set a timer for 10 minutes.") == 0.8
    assert shared_words("Quel est la capitale", "Okay, let's copy") == 0.0
    assert shared_words("", "anything") == 0.0


def test_a_call_that_speaks_french_keeps_french_unless_english_is_surer() -> None:
    # The French "Oui." over Opus, in a call heard in French before.
    oui = {"fr": ("Oui.", 0.58), "de": ("Oui.", 0.28), "es": ("Oye.", 0.26)}
    assert choose(("We...", 0.51), call="fr", **oui) == "fr"
    assert choose(("We...", 0.51), **oui) is None  # not surer by the margin
    # "Hola." in a Spanish call: tiny.en's "Hold up." is surer by more than the margin.
    assert choose(("Hold up.", 0.76), call="es", es=("Hola.", 0.37)) is None
    assert choose(("Can we speak English, please?", 0.85), call="fr",
                  fr=("Can we speak English, please?", 0.60)) is None
    # Another language, surer by the margin and in more than one word, takes the turn.
    assert choose(("Wallace.", 0.30), call="fr", fr=("Wallace.", 0.46),
                  es=("¿Cuál es la capital de España?", 0.70)) == "es"
    # The call's language under the least confidence: the usual rule decides.
    assert choose(("Thank you very much.", 0.37), call="fr", fr=("Boucouac !", 0.28)) is None
