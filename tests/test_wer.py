"""The word error rate of the hearing bench: numbers and punctuation do not count."""

from __future__ import annotations

from voxlive.bench.wer import normalise, number_words, wer, word_errors


def test_numbers_are_compared_as_words() -> None:
    assert number_words(56) == "fifty six"
    assert number_words(1_234) == "one thousand two hundred thirty four"
    assert normalise("Set a timer for 10 minutes, at 6 o'clock!") == normalise(
        "set a timer for ten minutes at six o'clock")
    assert normalise("the 3rd of 1,000") == ["the", "three", "of", "one", "thousand"]


def test_hyphens_and_symbols_become_words() -> None:
    assert normalise("Call-Forward on Busy") == ["call", "forward", "on", "busy"]
    assert normalise("press # or *") == ["press", "pound", "or", "star"]


def test_errors_count_substitutions_insertions_and_deletions() -> None:
    assert word_errors("how many legs does a spider have", "how many lenses does a side have") \
        == (2, 7)
    assert wer("what is my name", "what is my name") == 0.0
    assert wer("what is my name", "what is name please") == 0.5  # one deleted, one inserted
    assert wer("", "words") == 1.0
