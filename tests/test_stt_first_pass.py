"""The fast first hearing and its hand-over (voxlive/backends/stt_first_pass.py), with
scripted STT doubles: which transcript stands, who is asked, and batching of the rest."""

from __future__ import annotations

import numpy as np

from voxlive.backends.base import Transcript
from voxlive.backends.stt_first_pass import FirstPassSTT


class ScriptedSTT:
    """A test double: answers each audio (keyed by its first sample) from a script and
    records what it was asked."""

    def __init__(self, name: str, script: dict[float, Transcript]):
        self.description = name
        self.script = script
        self.asked: list[float] = []
        self.told: list[str | None] = []  # the call's language, each time asked
        self.batches: list[int] = []

    def recognise(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        self.asked.append(float(audio[0]))
        self.told.append(language)
        return self.script[float(audio[0])]

    def recognise_many(self, audios: list[np.ndarray]) -> list[Transcript]:
        self.batches.append(len(audios))
        return [self.recognise(a) for a in audios]


def turn(key: float) -> np.ndarray:
    return np.full(1600, key, np.float32)


SURE, UNSURE, NOTHING, FOREIGN, OUI = 1.0, 2.0, 3.0, 4.0, 8.0
FAST = {SURE: Transcript("What is the capital of France?", 0.92),
        UNSURE: Transcript("How many lenses does a side have?", 0.62),
        NOTHING: Transcript("", 0.0),
        FOREIGN: Transcript("Resist the help to start.", 0.64)}
CAREFUL = {UNSURE: Transcript("How many legs does a spider have?", 0.8),
           NOTHING: Transcript("", 0.0),
           FOREIGN: Transcript("Was ist die Hauptstadt von Deutschland?", 0.85),
           OUI: Transcript("Oui.", 0.58, language="fr")}


def stt() -> tuple[FirstPassSTT, ScriptedSTT, ScriptedSTT]:
    fast, careful = ScriptedSTT("fast", FAST), ScriptedSTT("careful", CAREFUL)
    return FirstPassSTT(fast, careful, sure_above=0.85), fast, careful


def test_a_sure_first_hearing_stands_and_the_careful_stt_is_not_asked() -> None:
    first, _, careful = stt()
    assert first.recognise(turn(SURE)) == FAST[SURE]
    assert careful.asked == [] and (first.passed, first.handed_on) == (1, 0)


def test_an_unsure_turn_is_heard_again_and_the_careful_transcript_stands() -> None:
    first, fast, careful = stt()
    assert first.recognise(turn(UNSURE)) == CAREFUL[UNSURE]
    assert first.recognise(turn(FOREIGN)).text.startswith("Was ist")
    assert fast.asked == careful.asked == [UNSURE, FOREIGN]


def test_no_words_is_never_sure() -> None:
    # A hum or another language can come out of the first model with no words: the
    # careful STT (and its multilingual fallback) decides.
    first, _, careful = stt()
    first.sure_above = 0.0
    assert first.recognise(turn(NOTHING)).text == ""
    assert careful.asked == [NOTHING]


def test_a_call_in_another_language_goes_to_the_careful_stt_alone() -> None:
    # Moonshine knows English only; the careful STT's fallback is told the language.
    first, fast, careful = stt()
    assert first.recognise(turn(OUI), language="fr") == CAREFUL[OUI]
    assert fast.asked == [] and careful.told == ["fr"]
    assert first.recognise(turn(SURE)) == FAST[SURE]  # English again: Moonshine first
    assert fast.asked == [SURE] and careful.told == ["fr"]


def test_the_languages_a_call_may_speak_are_the_careful_stt_s() -> None:
    first, _, careful = stt()
    assert first.languages == []  # a careful STT that hears English only
    careful.languages = ["de", "fr"]  # type: ignore[attr-defined]
    assert first.languages == ["de", "fr"]


def test_several_calls_turns_send_only_the_unsure_ones_in_one_batch() -> None:
    first, _, careful = stt()
    heard = first.recognise_many([turn(SURE), turn(UNSURE), turn(FOREIGN), turn(SURE)])
    assert [h.text for h in heard] == [FAST[SURE].text, CAREFUL[UNSURE].text,
                                      CAREFUL[FOREIGN].text, FAST[SURE].text]
    assert careful.batches == [2] and careful.asked == [UNSURE, FOREIGN]
    assert (first.passed, first.handed_on) == (2, 2)


def test_the_description_names_both_hearings_and_the_line() -> None:
    first, _, _ = stt()
    assert first.description == "fast, when sure (>= 0.85); else careful"
    assert surer_stt(0.2)[0].description == (
        "fast, when sure (>= 0.85) or surer by 0.2; else careful")


# The rule `surer_by` adds, on turns Moonshine is unsure of (scripted after the quality
# set's Romeo question over Opus, and a German one):
FAR_SURER, LITTLE_SURER, GERMAN = 5.0, 6.0, 7.0
FAST_MORE = {FAR_SURER: Transcript("Who wrote Romeo and Juliet?", 0.70),
             LITTLE_SURER: Transcript("Set the timer for 10 minutes", 0.62),
             GERMAN: Transcript("Resist the help to start from void shunt.", 0.90 - 0.06)}
CAREFUL_MORE = {FAR_SURER: Transcript("Who wrote the old one to the end?", 0.39),
                LITTLE_SURER: Transcript("Set a timer for 10 minutes.", 0.53),
                GERMAN: Transcript("Was ist die Hauptstadt von Deutschland?", 0.52,
                                   language="de")}


def surer_stt(surer_by: float | None) -> tuple[FirstPassSTT, ScriptedSTT]:
    careful = ScriptedSTT("careful", CAREFUL_MORE)
    return FirstPassSTT(ScriptedSTT("fast", FAST_MORE), careful, sure_above=0.85,
                        surer_by=surer_by), careful


def test_an_unsure_first_hearing_far_surer_than_the_careful_one_stands() -> None:
    first, careful = surer_stt(0.2)
    assert first.recognise(turn(FAR_SURER)) == FAST_MORE[FAR_SURER]
    assert first.recognise(turn(LITTLE_SURER)) == CAREFUL_MORE[LITTLE_SURER]  # by 0.09 only
    assert careful.asked == [FAR_SURER, LITTLE_SURER]  # both were heard again
    batch = first.recognise_many([turn(LITTLE_SURER), turn(FAR_SURER)])
    assert batch == [CAREFUL_MORE[LITTLE_SURER], FAST_MORE[FAR_SURER]]


def test_without_surer_by_the_careful_transcript_always_stands() -> None:
    first, _ = surer_stt(None)
    assert first.recognise(turn(FAR_SURER)) == CAREFUL_MORE[FAR_SURER]
    assert first.description == "fast, when sure (>= 0.85); else careful"


def test_a_careful_transcript_in_another_language_stands_against_any_english_one() -> None:
    first, _ = surer_stt(0.2)
    assert first.recognise(turn(GERMAN)) == CAREFUL_MORE[GERMAN]


class BrokenSTT:
    """A test double for a first pass that fails mid-call."""

    description = "broken"

    def recognise(self, audio: np.ndarray) -> Transcript:
        raise RuntimeError("onnxruntime: bad allocation")


def test_a_failing_first_pass_hands_the_turn_on_and_loses_nothing() -> None:
    careful = ScriptedSTT("careful", CAREFUL)
    first = FirstPassSTT(BrokenSTT(), careful, sure_above=0.85)
    assert first.recognise(turn(UNSURE)) == CAREFUL[UNSURE]
    assert [h.text for h in first.recognise_many([turn(FOREIGN)])] == [CAREFUL[FOREIGN].text]
