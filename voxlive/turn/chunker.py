"""Cuts the LLM's token stream into sentences, so speech starts at the first one."""

from __future__ import annotations

import re

_NOT_SPOKEN = re.compile(r"\[[^\]]*\]|\*+|#+|`+|_{2,}")


def speakable(text: str) -> str:
    """The text as it should be said: no [bracketed notes] (small models copy the ones
    in their prompt, such as voice tags), no markdown emphasis or headings."""
    return re.sub(r"\s+", " ", _NOT_SPOKEN.sub(" ", text)).strip()


_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")


class SentenceChunker:
    """Feed text pieces; get back whole sentences as soon as they are complete.

    A sentence that grows past `max_chars` is cut at a clause boundary instead, so a
    long sentence does not hold back its audio; the first chunk uses the shorter
    `first_max_chars`, because the wait for it is the wait the user hears.
    """

    def __init__(self, min_chars: int = 12, max_chars: int = 160, first_max_chars: int = 60):
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.first_max_chars = first_max_chars
        self._emitted = 0
        self._buffer = ""

    def push(self, piece: str) -> list[str]:
        self._buffer += piece
        sentences: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                return sentences
            sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if sentence:
                sentences.append(sentence)
                self._emitted += 1

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _find_cut(self) -> int | None:
        for match in _SENTENCE_END.finditer(self._buffer):
            if match.end() >= self.min_chars:
                return match.end()
        limit = self.max_chars if self._emitted else self.first_max_chars
        if len(self._buffer) > limit:
            clauses = [m.end() for m in _CLAUSE_END.finditer(self._buffer)]
            return clauses[-1] if clauses else self._buffer.rfind(" ") + 1 or None
        return None
