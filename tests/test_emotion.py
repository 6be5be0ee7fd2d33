"""Speech emotion: prosodic arousal on espeak-ng speech, SpeechBrain's plumbing on a tiny model.

espeak-ng's -p (pitch, 0-99) and -s (words per minute) stand in for a caller who is
worked up (high and fast) or flat (low and slow): the same words, said differently.
"""

from __future__ import annotations

import copy
import functools
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.emotion.base import UNKNOWN, Emotion
from voxlive.emotion.prosody import (
    EXCITED_ABOVE,
    MIN_TURN_STD_FRACTION,
    TURN_STD,
    ProsodyEmotionBackend,
    ProsodySpeaker,
    extract_features,
    label_for,
    scores_for,
)
from voxlive.emotion.speechbrain_backend import _as_probabilities
from voxlive.harness.speech import espeak, silence

RATE = 16_000
SENTENCES = [
    "I would like to book a table for two people tonight.",
    "Can you tell me what the weather will be like tomorrow morning?",
    "My sister is coming to visit us next weekend with her children.",
]
WARM_UP = [
    "The train to the city leaves every twenty minutes on weekdays.",
    "Please remind me to call the dentist after lunch.",
    "We planted tomatoes and beans in the garden last spring.",
    "The meeting has been moved to Thursday afternoon.",
]
HIGH_FAST = {"pitch": 80, "words_per_minute": 220}
LOW_SLOW = {"pitch": 20, "words_per_minute": 120}
NEUTRAL = {"pitch": 50, "words_per_minute": 160}
ORDER = {"low": 0, "neutral": 1, "excited": 2}


@functools.cache
def _spoken(text: str, pitch: int, words_per_minute: int, voice: str) -> np.ndarray:
    audio = espeak(text, RATE, words_per_minute=words_per_minute, pitch=pitch, voice=voice)
    audio.flags.writeable = False  # shared between tests through the cache
    return audio


def spoken(text: str, pitch: int, words_per_minute: int, voice: str = "en-us") -> np.ndarray:
    return _spoken(text, pitch, words_per_minute, voice)


@pytest.fixture(scope="module")
def prosody() -> ProsodyEmotionBackend:
    # voxlive.config's ProsodyEmotionBackend model carries min_speech_s; any such object will do.
    return ProsodyEmotionBackend(SimpleNamespace(min_speech_s=0.5))


def assert_well_formed(emotion: Emotion) -> None:
    assert emotion.label in ORDER, emotion
    assert 0.0 <= emotion.confidence <= 1.0
    assert set(emotion.scores) == set(ORDER)
    assert sum(emotion.scores.values()) == pytest.approx(1.0)
    assert max(emotion.scores, key=emotion.scores.__getitem__) == emotion.label
    assert emotion.arousal is not None and -1.0 <= emotion.arousal <= 1.0
    assert np.isfinite([emotion.confidence, emotion.arousal, *emotion.scores.values()]).all()


# --- prosody: the direction of arousal ---------------------------------------------------


@requires_espeak
@pytest.mark.parametrize("text", SENTENCES)
def test_high_and_fast_is_more_aroused_than_low_and_slow(prosody, text):
    high = prosody.analyse(spoken(text, **HIGH_FAST), prosody.new_speaker())
    low = prosody.analyse(spoken(text, **LOW_SLOW), prosody.new_speaker())
    assert_well_formed(high)
    assert_well_formed(low)
    assert high.arousal - low.arousal > 0.5, (high, low)
    assert ORDER[high.label] > ORDER[low.label], (high.label, low.label)
    assert low.label == "low"


@requires_espeak
def test_the_ordering_survives_a_learned_baseline(prosody):
    """A caller heard for four ordinary turns, then high and fast or low and slow."""
    warmed = prosody.new_speaker()
    for text in WARM_UP:
        assert_well_formed(prosody.analyse(spoken(text, **NEUTRAL), warmed))
    assert warmed.turns == len(WARM_UP)
    for text in SENTENCES:
        # Each comparison starts from the same history: analyse updates the speaker.
        high = prosody.analyse(spoken(text, **HIGH_FAST), copy.deepcopy(warmed))
        low = prosody.analyse(spoken(text, **LOW_SLOW), copy.deepcopy(warmed))
        assert high.arousal - low.arousal > 0.5, (text, high, low)
        assert high.label == "excited" and low.label == "low", (text, high, low)


@requires_espeak
def test_a_caller_who_always_talks_high_is_not_excited_for_ever(prosody):
    """Their high pitch is theirs: once their baseline is learned it stops counting."""
    caller = prosody.new_speaker()
    # espeak-ng's default voice at -p 80 is 137 Hz, an ordinary man's pitch; its female
    # variant f2 at -p 80 is 263 Hz, high for anyone.
    high_pitched = {"pitch": 80, "words_per_minute": 160, "voice": "en-us+f2"}
    texts = [SENTENCES[0], *WARM_UP[:3], SENTENCES[0]]  # the 5th turn repeats the 1st
    turns = [prosody.analyse(spoken(text, **high_pitched), caller) for text in texts]
    for turn in turns:
        assert_well_formed(turn)
    first, fifth = turns[0], turns[-1]
    assert fifth.arousal < first.arousal - 0.15, [t.arousal for t in turns]
    assert fifth.label != "excited"
    # A stranger saying the same words the same way still counts as higher than usual.
    assert prosody.analyse(spoken(SENTENCES[0], **high_pitched), None).arousal > fifth.arousal


@requires_espeak
def test_features_follow_the_voice():
    high = extract_features(spoken(SENTENCES[0], **HIGH_FAST))
    low = extract_features(spoken(SENTENCES[0], **LOW_SLOW))
    assert high is not None and low is not None
    # espeak-ng's -p 80 and -p 20 are about 137 Hz and 76 Hz: ten semitones apart.
    assert high.pitch_st - low.pitch_st > 8
    assert high.rate > low.rate * 1.3
    assert 1.0 < high.voiced_s < low.voiced_s


# --- prosody: nothing to judge -------------------------------------------------------


def _white_noise() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 0.1, 3 * RATE).astype(np.float32)


NO_SPEECH = {
    "empty": lambda: np.zeros(0, dtype=np.float32),
    "one sample": lambda: np.ones(1, dtype=np.float32),
    "silence": lambda: silence(2.0, RATE),
    "0.1 s of a tone": lambda: 0.3 * np.sin(2 * np.pi * 150 * np.arange(1600) / RATE),
    "white noise": _white_noise,
    "NaN": lambda: np.full(RATE, np.nan, dtype=np.float32),
    "int16 zeros": lambda: np.zeros(RATE, dtype=np.int16),
}


@pytest.mark.parametrize("name", list(NO_SPEECH))
def test_no_speech_is_unknown_never_an_error(prosody, name):
    """White noise is "unknown" too: YIN finds no period in it, so there is no voiced
    frame to measure, rather than a low-confidence guess from its level alone."""
    speaker = prosody.new_speaker()
    emotion = prosody.analyse(NO_SPEECH[name](), speaker)
    assert emotion == Emotion(UNKNOWN, 0.0, {}, prosody.description, None)
    assert not emotion.known
    assert speaker.turns == 0  # nothing learned from it


@requires_espeak
def test_too_little_voiced_speech_is_unknown(prosody):
    word = spoken("Yes.", **NEUTRAL)
    assert prosody.analyse(word, prosody.new_speaker()).label == UNKNOWN
    lenient = ProsodyEmotionBackend(SimpleNamespace(min_speech_s=0.05))
    assert lenient.analyse(word, lenient.new_speaker()).label != UNKNOWN
    # 0.1 s cut from a sentence, and a sentence drowned in silence still judged.
    assert prosody.analyse(spoken(SENTENCES[0], **NEUTRAL)[:1600], None).label == UNKNOWN
    padded = np.concatenate([silence(3, RATE), spoken(SENTENCES[0], **NEUTRAL), silence(3, RATE)])
    assert prosody.analyse(padded, None).label != UNKNOWN


# --- prosody: labels, scores, normalisation, cost ------------------------------------


def test_labels_scores_and_confidence_agree():
    for arousal in np.linspace(-1, 1, 81):
        label, confidence = label_for(arousal)
        scores = scores_for(arousal)
        assert max(scores, key=scores.__getitem__) == label, arousal
        assert sum(scores.values()) == pytest.approx(1.0)
        assert 0.5 <= confidence <= 1.0
    assert label_for(EXCITED_ABOVE + 1e-9)[0] == "excited"
    assert label_for(-EXCITED_ABOVE - 1e-9)[0] == "low"
    assert label_for(0.0) == ("neutral", 1.0)
    assert label_for(1.0) == ("excited", 1.0)
    assert label_for(EXCITED_ABOVE)[1] == pytest.approx(0.5)


def test_the_baseline_moves_from_the_priors_to_the_caller():
    speaker = ProsodySpeaker()
    prior_mean, prior_std = speaker.reference()
    own = prior_mean + 2 * prior_std  # a caller two standard deviations up on everything
    for _ in range(50):
        speaker.update(own)
    mean, std = speaker.reference()
    assert np.all(np.abs(mean - own) < 0.1 * prior_std)
    assert np.all(std >= MIN_TURN_STD_FRACTION * TURN_STD)  # never collapses on a monotone caller


@requires_espeak
def test_analysis_against_the_priors_is_repeatable(prosody):
    """Its cost is a figure of `voxlive bench emotion` (budget: 20 ms per second of audio);
    here: the same turn, judged against the priors alone, gets the same estimate each time
    (no state leaks between calls) and a well-formed one."""
    audio = spoken(SENTENCES[1], **NEUTRAL)
    first = prosody.analyse(audio, None)
    assert_well_formed(first)
    for _ in range(3):
        assert prosody.analyse(audio, None) == first


# --- SpeechBrain ---------------------------------------------------------------------


def test_classifier_outputs_become_probabilities():
    probabilities = np.array([[0.1, 0.6, 0.2, 0.1]], dtype=np.float32)
    assert _as_probabilities(probabilities) == pytest.approx([0.1, 0.6, 0.2, 0.1])
    log_probabilities = np.log(probabilities)[:, None, :]  # (batch, 1, classes) too
    assert _as_probabilities(log_probabilities) == pytest.approx([0.1, 0.6, 0.2, 0.1], abs=1e-6)
    logits = np.array([[2.0, 0.0, -1.0, 0.0]])
    assert _as_probabilities(logits).sum() == pytest.approx(1.0)
    assert np.argmax(_as_probabilities(logits)) == 0


