"""Is what paused the reply its own words coming back? A check on the transcript.

The echo guard (audio/echo.py) compares the sound; when it misses (a busy machine
delays the echo past its window, a codec smears it), the reply's own words reach the
transcriber and would confirm an interruption: a false stop, the one kind of mistake a
pause cannot take back. So before a paused reply is cut, the transcript is compared with
the reply's text: when nearly all of its content words are words of the reply, it was
the reply heard again, and the reply resumes. A real interruption says something else
("stop", "wait, what about ..."); a user who repeats the reply's words only has to go on
talking to interrupt.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

FUNCTION_WORDS = frozenset({
    "the", "and", "was", "were", "for", "with", "that", "this", "you", "are", "his", "her",
    "they", "she", "its", "but", "not", "had", "have", "has", "from", "what", "who",
    "there", "then", "him", "them", "their", "all", "one", "out", "into", "very",
})
ECHO_SHARE = 0.7
"""Share of the transcript's content words found in the reply above which it is echo."""
NEAR = 0.8
"""difflib ratio at which a transcribed word counts as a reply word (tiny.en's spelling)."""


def content_words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return [w for w in words if len(w) >= 3 and w not in FUNCTION_WORDS]


def sounds_like_reply(transcript: str, reply_text: str) -> bool:
    """Are (nearly) all content words of `transcript` words of `reply_text`?"""
    heard = content_words(transcript)
    reply = set(content_words(reply_text))
    if not heard or not reply:
        return False
    found = sum(1 for w in heard if w in reply
                or any(SequenceMatcher(None, w, r).ratio() >= NEAR for r in reply))
    return found / len(heard) >= ECHO_SHARE
