"""The runtime's notes to the LLM, and the test that a reply sentence echoes one.

Why: the prompt carries bookkeeping the user never said (where an earlier reply was cut
off, what the camera shows, how the user sounded). Small models copy it: SmolLM2-135M
answered "What is my name?" with "The user interrupted, "What in my name?"". So the notes
are few, short, kept out of the turns (conversation.py puts them in the system message),
never say "the user", and a sentence that still echoes one is not spoken (spoken.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

CUT_MARK = "…"
"""Ends an assistant turn that the user cut off; the turn holds only the words heard."""

CUT_RULE = (
    f"An earlier reply of yours that ends with {CUT_MARK} was cut off there: only the "
    "words before it were heard, so do not assume the rest was."
)
CAMERA_NOTE = "Camera view now: {camera} Mention it only if asked what you see or where."
MOOD_NOTE = "Voice tone now: {label}. Let it shape your tone; never mention it."

NOTES: tuple[str, ...] = (CUT_RULE, CAMERA_NOTE, MOOD_NOTE)
"""The fixed wording of every note (placeholders are not words of the note)."""

_VOICE_TAG = re.compile(r"^\s*\[voice:\s*([\w -]+)\]\s*", re.I)

# Phrases a spoken reply has no business saying: they only come from copying the
# prompt's bookkeeping (a voice assistant says "you", never "the user").
_LEAK_PATTERNS = re.compile(
    r"\bthe user\b|\buser'?s\b|\b(?:user|assistant|system)\s*:|\bvoice(?: tone)?\s*:"
    r"|\b(?:you|user|they) interrupted\b|\binterrupted (?:that|this|the|my|your) reply\b"
    r"|\bcamera view\b|\bsystem (?:prompt|message|note)\b|\bwere heard\b|\bcut off there\b",
    re.I,
)
_WORD = re.compile(r"\w+(?:['’]\w+)?")
SHINGLE = 5
"""A sentence sharing this many consecutive words with a note (or the system prompt)
copies it; fewer is ordinary language ("one or two short sentences" may be said)."""


def split_voice_tag(text: str) -> tuple[str | None, str]:
    """("excited", "words") for "[voice: excited] words" (emotion/style.py's tag)."""
    match = _VOICE_TAG.match(text)
    if not match:
        return None, text
    return match.group(1).strip(), text[match.end():]


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return {tuple(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def _note_words(note: str) -> str:
    return re.sub(r"\{\w+\}", " | ", note)  # a placeholder breaks a run of words


def echoes_bookkeeping(sentence: str, notes: Iterable[str] = ()) -> bool:
    """Does this reply sentence copy bookkeeping (the fixed notes, or `notes`, such as
    the system prompt)? Case-insensitive."""
    if _LEAK_PATTERNS.search(sentence) or _VOICE_TAG.match(sentence):
        return True
    mine = _shingles(sentence)
    if not mine:
        return False
    return any(mine & _shingles(part) for note in (*NOTES, *notes)
               for part in _note_words(note).split("|"))


def leak_count(replies: Sequence[str]) -> int:
    """How many replies echo bookkeeping (for the quality benchmark)."""
    return sum(echoes_bookkeeping(r) for r in replies)
