"""Comparing transcripts by their words."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

# tiny.en hears espeak-ng's "France is" as "Francis" (0.77) and "Paris" as "pairs" (0.8);
# 'the'/'she' (0.67) stays a miss.
NEAR_MISS_RATIO = 0.75
# A transcript "is" a sentence when this share of its content words is in it.
MIN_WORD_SHARE = 0.6


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def share_found(expected: str, heard: str, min_length: int = 3,
                near_miss: float = 1.0) -> float:
    """The share of `expected`'s words (of `min_length`+ letters) that occur in `heard`.
    With near_miss < 1, a word also counts when a heard word is that similar to it
    (difflib ratio)."""
    wanted = [w for w in words(expected) if len(w) >= min_length]
    got = set(words(heard))

    def found(word: str) -> bool:
        return word in got or any(
            SequenceMatcher(None, word, other).ratio() >= near_miss for other in got)

    return sum(found(w) for w in wanted) / max(1, len(wanted))


def says(heard: str, expected: str) -> bool:
    """Whether a transcript is the sentence, near misses allowed. The end-to-end tests check
    that the call carried the question, not how well tiny.en hears one phrase: espeak's
    "capital of France" over Opus comes out as "capital of friends" in some voices (how
    well the profiles hear is `voxlive bench quality`'s and the hearing bench's job)."""
    return share_found(expected, heard, near_miss=NEAR_MISS_RATIO) >= MIN_WORD_SHARE
