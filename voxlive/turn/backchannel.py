"""Words that acknowledge without taking the turn ("mm-hm", "yeah"): not an interruption."""

from __future__ import annotations

import re

BACKCHANNELS = frozenset({
    "mm", "mmm", "hm", "hmm", "mhm", "mm-hm", "mm-hmm", "uh-huh", "uh", "um", "ah", "oh",
    "yeah", "yep", "yes", "ok", "okay", "right", "sure", "aha", "huh",
})


def meaningful_words(text: str) -> list[str]:
    """The words of `text` that are not backchannels or fillers."""
    words = re.findall(r"[a-z0-9']+(?:-[a-z0-9']+)*", text.lower())
    return [w for w in words if w not in BACKCHANNELS]
