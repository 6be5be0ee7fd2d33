"""How the user sounded shapes the prompt and the voice."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_espeak
from voxlive.backends.tts_espeak import EspeakTTS
from voxlive.config import EspeakTts
from voxlive.emotion.style import MIN_CONFIDENCE, TAG_GUIDE, prompt_tag, reply_style


def test_the_tag_follows_the_label_and_needs_confidence() -> None:
    assert prompt_tag("excited", 0.8) == "[voice: excited] "
    assert prompt_tag("low", 0.6) == "[voice: low] "
    assert prompt_tag("excited", MIN_CONFIDENCE / 2) == ""
    assert prompt_tag("unknown", 1.0) == ""
    assert "[voice: excited]" in TAG_GUIDE


def test_the_reply_style_follows_the_label() -> None:
    assert reply_style("excited", 0.9) == "cheerful"
    assert reply_style("happy", 0.9) == "cheerful"
    assert reply_style("low", 0.9) == "calm"
    assert reply_style("angry", 0.9) == "calm"
    assert reply_style("neutral", 0.9) == "default"
    assert reply_style("excited", 0.1) == "default"


@requires_espeak
def test_espeak_speaks_a_calm_reply_slower_than_a_cheerful_one() -> None:
    tts = EspeakTTS(EspeakTts(backend="espeak-ng"))
    text = "That sounds wonderful, tell me more about it."
    seconds = {style: len(np.concatenate(list(tts.synthesize(text, style)))) / tts.sample_rate
               for style in ("cheerful", "default", "calm")}
    assert seconds["cheerful"] < seconds["default"] < seconds["calm"]


@pytest.mark.models
def test_piper_speaks_a_calm_reply_slower_than_a_cheerful_one() -> None:
    pytest.importorskip("piper", reason="piper-tts is the GPL extra: pip install 'voxlive[piper]'")
    from voxlive.backends.tts_piper import PiperTTS, PiperTts

    # piper varies each phoneme's duration at random (in CI three calm takes came out barely
    # longer than three cheerful ones); without that noise every take is the same and only
    # the style differs
    tts = PiperTTS(PiperTts(backend="piper", duration_noise=0.0))
    text = "That sounds wonderful, tell me more about it."
    seconds = {style: len(np.concatenate(list(tts.synthesize(text, style)))) / tts.sample_rate
               for style in ("cheerful", "default", "calm")}
    assert seconds["cheerful"] < seconds["default"] < seconds["calm"]
    assert seconds["cheerful"] < seconds["calm"] * 0.9
