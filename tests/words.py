"""Comparing transcripts by their words."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def share_found(expected: str, heard: str, min_length: int = 3) -> float:
    """The share of `expected`'s words (of `min_length`+ letters) that occur in `heard`."""
    wanted = [w for w in words(expected) if len(w) >= min_length]
    got = set(words(heard))
    return sum(w in got for w in wanted) / max(1, len(wanted))
