"""Word error rate after normalisation, so that "8" and "eight", "Call-Forward" and "call
forward", or a missing full stop are not counted as recognition errors."""

from __future__ import annotations

import re

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_SUFFIX = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_SPELLED = {"%": " percent ", "&": " and ", "#": " pound ", "*": " star ", "+": " plus "}


def number_words(n: int) -> str:
    """0 ... 999,999 in words ("one hundred twenty three"), digit by digit beyond."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + (" " + number_words(rest) if rest else "")
    if n < 1_000_000:
        rest = n % 1000
        return number_words(n // 1000) + " thousand" + (" " + number_words(rest) if rest else "")
    return " ".join(_ONES[int(d)] for d in str(n))


def normalise(text: str) -> list[str]:
    """Lower case, numbers as words, no punctuation; hyphens and slashes split words."""
    text = text.lower().replace("’", "'")
    text = _ORDINAL_SUFFIX.sub(r"\1", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    for symbol, spoken in _SPELLED.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    text = re.sub(r"[-/_]", " ", text)
    text = re.sub(r"[^a-z' ]", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words): sum both over a corpus, then divide, for its WER."""
    ref = normalise(reference)
    return edit_distance(ref, normalise(hypothesis)), len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / max(1, words)
