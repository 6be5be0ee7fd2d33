"""Which words take the turn from a speaking reply (voxlive/turn/backchannel.py)."""

from __future__ import annotations

import pytest

from voxlive.turn.backchannel import meaningful_words


@pytest.mark.parametrize("heard", [
    "MMHM", "Mm-hmm.", "Mmm, hmm.", "mhm", "Uh-huh.", "uhhuh", "Yeah.", "Okay, right.",
])
def test_a_hum_or_an_acknowledgement_has_no_meaningful_word(heard: str) -> None:
    # bench bargein: tiny.en wrote a caller's "mm-hm" as "MMHM", and the reply stopped.
    assert meaningful_words(heard) == []


@pytest.mark.parametrize(("heard", "words"), [
    ("Mm, wait a second.", ["wait", "a", "second"]),
    ("Hmm, what about my mom?", ["what", "about", "my", "mom"]),
    ("Uh-huh, stop.", ["stop"]),
    ("Who?", ["who"]),
])
def test_words_said_around_a_hum_still_count(heard: str, words: list[str]) -> None:
    assert meaningful_words(heard) == words
