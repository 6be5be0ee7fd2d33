"""Is what paused the reply its own words coming back? A check on the transcript.

The echo guard (audio/echo.py) compares the sound; when it misses (a busy machine
delays the echo past its window, a codec smears it), the reply's own words reach the
transcriber and would confirm an interruption: a false stop, the one kind of mistake a
pause cannot take back. So before a paused reply is cut, the transcript is compared with
the reply's text: when nearly all of its words are a run of the reply's words, in the
reply's order, it was the reply heard again, and the reply resumes. A real interruption
says something else ("stop", "wait, what about ..."); a user who repeats the reply's
words only has to go on talking to interrupt.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

ECHO_SHARE = 0.8
"""Share of the transcript's words that must be the reply's words, in the reply's order."""
NEAR = 0.8
"""difflib ratio at which a transcribed word counts as a reply word (tiny.en's spelling)."""


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def sounds_like_reply(transcript: str, reply_text: str) -> bool:
    """Is `transcript` (nearly) a run of `reply_text`'s words, in order?

    In order, not as a bag: a user who asks "what is the capital of France?" while the
    reply says "the capital of France is Paris" shares its content words, but not the
    sequence ("what is" comes before, where the reply has nothing)."""
    heard = words(transcript)
    reply = words(reply_text)
    if not heard or not reply:
        return False
    vocabulary = set(reply)
    spelled = [w if w in vocabulary else _nearest(w, vocabulary) for w in heard]
    matcher = SequenceMatcher(None, spelled, reply, autojunk=False)
    found = sum(block.size for block in matcher.get_matching_blocks())
    return found / len(heard) >= ECHO_SHARE


def _nearest(word: str, vocabulary: set[str]) -> str:
    """The reply word that `word` is a misspelling of, or `word` itself."""
    best = max(vocabulary, key=lambda r: SequenceMatcher(None, word, r).ratio())
    return best if SequenceMatcher(None, word, best).ratio() >= NEAR else word
