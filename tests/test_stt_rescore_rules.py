"""The rescorer's rule against cutting off words Whisper heard
(voxlive/backends/stt_rescore.py `cuts_ends_off`); no model."""

from __future__ import annotations

from voxlive.backends.stt_rescore import cuts_ends_off


def cut(words: str, heard: str) -> bool:
    return cuts_ends_off(words.split(), heard.split())


def test_dropping_words_at_either_end_is_cutting_off() -> None:
    heard = "my favorite color is blue and"
    assert cut("my favorite color is blue", heard)
    assert cut("favorite color is blue and", heard)


def test_changed_or_added_words_are_a_choice() -> None:
    heard = "what is the capital and friends"
    assert not cut("what is the capital of france", heard)
    assert not cut(heard, heard)
    assert not cut("how many minutes are there in an hour", "how many minutes are going on")
    assert not cut("what is the capital", "")
