"""Words that acknowledge without taking the turn ("mm-hm", "yeah"): not an interruption."""

from __future__ import annotations

import re

BACKCHANNELS = frozenset({
    "mm", "mmm", "hm", "hmm", "mhm", "mhmm", "mm-hm", "mm-hmm", "mm-mm", "hm-hmm",
    "uh-huh", "uh-uh", "uh-hm", "uh", "um", "ah", "oh", "aha", "huh",
    "yeah", "yep", "yes", "ok", "okay", "right", "sure",
})


# Whisper spells a hum as it likes ("MMHM", "Mmm-hmm", "uhhuh"): any word of m's and h's,
# or of uh's, is one.
_HUM = re.compile(r"[mh]+(?:-[mh]+)*|u+h+-?h?u+h+")


def meaningful_words(text: str) -> list[str]:
    """The words of `text` that are not backchannels or fillers."""
    words = re.findall(r"[a-z0-9']+(?:-[a-z0-9']+)*", text.lower())
    return [w for w in words if w not in BACKCHANNELS and not _HUM.fullmatch(w)]
