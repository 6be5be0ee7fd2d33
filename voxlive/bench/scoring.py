"""Scoring what was heard and answered: normalised word error rate, keyword answers,
reply length, bookkeeping leaks.

Normalisation (both sides alike) so that the rate counts words, not spelling: lower
case; punctuation and hyphens out; apostrophes dropped inside words; fillers (uh, um,
hm ...) out, since references mark them and recognisers skip them; and, for English,
numbers as words ("56" and "fifty-six" are both "fifty six"; a year such as 1945 is
"nineteen forty five", as it is said).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voxlive.turn.bookkeeping import echoes_bookkeeping

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
         "ninety")
FILLERS = frozenset({"uh", "um", "uhm", "hm", "hmm", "mm", "mhm", "er", "erm", "ah", "eh"})


def number_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000; years 1100-2099 as said ("nineteen forty five")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if 1100 <= n < 2100 and n % 100 and not 2000 <= n < 2010:
        return f"{number_words(n // 100)} {number_words(n % 100)}"
    if n < 1000:
        rest = n % 100
        return f"{_ONES[n // 100]} hundred" + (f" {number_words(rest)}" if rest else "")
    if n < 1_000_000:
        rest = n % 1000
        return f"{number_words(n // 1000)} thousand" + (f" {number_words(rest)}" if rest else "")
    return str(n)


def normalise(text: str, language: str = "en") -> list[str]:
    """The words of `text`, normalised for scoring (module docstring)."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)  # 1,000 -> 1000
    if language == "en":
        text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} "
                      if len(m.group()) <= 6 else m.group(), text)
    text = re.sub(r"(\w)'(\w)", r"\1\2", text)
    words = re.findall(r"\w+", text)
    return [w for w in words if w not in FILLERS]


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def word_errors(ref: str, hyp: str, language: str = "en") -> tuple[int, int]:
    """(word edits, reference words) of one utterance, normalised."""
    r, h = normalise(ref, language), normalise(hyp, language)
    return edit_distance(r, h), len(r)


def word_error_rate(pairs: Sequence[tuple[str, str]], language: str = "en") -> float:
    """Corpus WER of (reference, hypothesis) pairs: all edits over all reference words."""
    counts = [word_errors(ref, hyp, language) for ref, hyp in pairs]
    words = sum(w for _, w in counts)
    return sum(e for e, _ in counts) / words if words else float("nan")


def answers(reply: str, alternatives: Sequence[str]) -> bool:
    """Does the reply hold one of the keyword alternatives, as whole words?"""
    said = f" {' '.join(normalise(reply))} "
    return any(f" {' '.join(normalise(a))} " in said for a in alternatives)


def sentence_count(reply: str) -> int:
    parts = re.split(r"(?<=[.!?…])[\"')\]]*\s+", reply.strip())
    return sum(1 for p in parts if re.search(r"\w", p))


# Broader than the filter of voxlive/turn/bookkeeping.py on purpose: the benchmark must
# also catch what that filter would miss. None of the set's questions asks about users,
# cameras or interruptions, so these words in a reply come from the prompt's bookkeeping.
_BENCH_LEAKS = re.compile(
    r"\buser\b|interrupt|\[|\]|\bcamera\b|\bvoice\s*:|\btag\b|system (?:prompt|message)"
    r"|\bcut off\b|<\|",
    re.I,
)


def leaks(reply: str) -> bool:
    """Does a reply (as spoken) echo the history's bookkeeping?"""
    return bool(_BENCH_LEAKS.search(reply)) or echoes_bookkeeping(reply)
