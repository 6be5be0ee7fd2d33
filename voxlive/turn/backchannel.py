"""Words that acknowledge without taking the turn ("mm-hm", "yeah"): not an interruption."""

from __future__ import annotations

import re

BACKCHANNELS = frozenset({
    "mm", "mmm", "hm", "hmm", "mhm", "mhmm", "mm-hm", "mm-hmm", "mm-mm", "hm-hmm",
    "uh-huh", "uh-uh", "uh-hm", "uh", "um", "ah", "oh", "aha", "huh",
    "yeah", "yep", "yes", "ok", "okay", "right", "sure",
    # Callers of other languages are heard by a multilingual model (stt.other_languages),
    # which also hears an English "yeah" as "Ja.".
    "ja", "jaja", "genau", "sí", "si", "vale", "claro", "oui", "ouais", "d'accord",
})


# Whisper spells a hum as it likes ("MMHM", "Mmm-hmm", "uhhuh"): any word of m's and h's,
# or of uh's, is one.
_HUM = re.compile(r"[mh]+(?:-[mh]+)*|u+h+-?h?u+h+")


def meaningful_words(text: str) -> list[str]:
    """The words of `text` that are not backchannels or fillers."""
    words = re.findall(r"[^\W_]+(?:['-][^\W_]+)*", text.lower())
    return [w for w in words if w not in BACKCHANNELS and not _HUM.fullmatch(w)]
