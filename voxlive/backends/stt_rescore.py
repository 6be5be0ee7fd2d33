"""Pick among Whisper's beam hypotheses with a small language model (n-best rescoring).

tiny.en's beam search often holds the right words one or two places down: on the quality
set's espeak-ng questions, "What do bees make?" came second to "What do these make?", "What
is the capital of France?" fourth to "... capital and friends?", "How many minutes are
there in an hour" third to "How many minutes are going on?". Whisper's own decoder is a
weak language model (tiny.en: 39 M parameters in all, trained on captions); a chat model,
even the 135 M SmolLM2 the embedded profiles already ship for the end of turn, knows
which of those a person would say. Each distinct hypothesis (case and punctuation aside) is scored

    Whisper's log-probability of its tokens + weight x the LM's log-probability of its words

and the best is kept: classic shallow n-best rescoring, on at most `hypotheses` short
sentences, after the decoder has finished (nothing changes inside the beam search).

Measured (README "Hearing"): on the quality set's 32 English turns, weight 0.35 lowered
the errors of 5 and raised none; at 0.4 the LM's taste for "you" turned "Which city do I
live in?" into "... do you live in?", at 0.3 "What do bees make?" was lost.
Log-probabilities are summed, not averaged over tokens: averaging made things worse
(SmolLM2 then liked "What animal can you do?"). The confidence reported stays that of
Whisper's best hypothesis: it says how sure the acoustic model is that it heard English
words at all, which barge-in and the other-languages fallback rely on; the rescoring
only chooses which words.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from voxlive.backends.turn_text import (
    END_TOKEN,
    KNOWN_ENDS,
    chat_prefix,
    end_signal,
    normalise,
    sentence_end_ids,
)

_CONTEXT = 256


@dataclass(frozen=True)
class Hypothesis:
    text: str
    log_probability: float
    """Whisper's log-probability of the whole token sequence (end of text included)."""


def cuts_ends_off(words: list[str], heard: list[str]) -> bool:
    """Is `words` `heard` with words dropped at its start or its end? The language model
    likes a finished sentence, and at a pause it would pick "My favourite colour is
    blue." over the "... blue and" Whisper heard best: the end-of-turn signal then reads a
    finished turn. Words Whisper heard are changed, never cut off."""
    n = len(words)
    return 0 < n < len(heard) and (heard[:n] == words or heard[-n:] == words)


class HypothesisRescorer:
    """A ChatML GGUF (SmolLM2 by default) that scores a user's message; its own small
    context with every position's logits. It runs while the caller waits for the
    transcript, and little else does then: two threads (113 against 192 ms a turn on
    the quality set's turns, this project's 2-core machine).

    It reads the words exactly as the text end-of-turn model does (turn_text.py: the same
    prefix, the words normalised), so the picked transcript's end signal is a by-product:
    it is left in turn_text.KNOWN_ENDS for the turn detector."""

    def __init__(self, model_path: str, weight: float, n_threads: int = 2):
        from llama_cpp import Llama

        self.model_path = model_path
        self.weight = weight
        self.llama = Llama(model_path=model_path, n_ctx=_CONTEXT, n_threads=n_threads,
                           n_threads_batch=n_threads, n_batch=128, logits_all=True,
                           verbose=False)
        self.end_ids = sentence_end_ids(self.llama)
        self.end = self.llama.tokenize(END_TOKEN.encode(), add_bos=False, special=True)
        self.prefix = chat_prefix(self.llama)
        self.room = _CONTEXT - len(self.prefix) - 1
        self._lock = threading.Lock()

    def pick(self, hypotheses: list[Hypothesis]) -> Hypothesis:
        """The hypothesis with the best combined score; the first (Whisper's best) when
        there is nothing to choose between. Blocking: call it from a worker thread."""
        distinct: dict[str, Hypothesis] = {}
        for hypothesis in hypotheses:  # best first: a variant keeps the better spelling
            distinct.setdefault(normalise(hypothesis.text), hypothesis)
        if len(distinct) < 2 or "" in distinct:
            return hypotheses[0]
        with self._lock:
            # In token order, so that each shares the most with the one before it in
            # the context (beam hypotheses differ in a word or two).
            tokens = {words: self._tokens(words) for words in distinct}
            read = {words: self._read(tokens[words])
                    for words in sorted(distinct, key=tokens.__getitem__)}
        heard = normalise(hypotheses[0].text).split()
        scored = {words: distinct[words].log_probability + self.weight * log_p
                  for words, (log_p, _) in read.items()
                  if not cuts_ends_off(words.split(), heard)}
        best = max(scored, key=scored.__getitem__)
        KNOWN_ENDS.remember(self.model_path, best, read[best][1])
        return distinct[best]

    def log_probability(self, words: str) -> float:
        """log P(the user says `words`, then ends the message)."""
        with self._lock:
            return self._read(self._tokens(words))[0]

    def _tokens(self, words: str) -> list[int]:
        return self.llama.tokenize(words.encode(), add_bos=False)[: self.room] + self.end

    def _read(self, tokens: list[int]) -> tuple[float, float]:
        """(log P(the tokens), the end signal after the words). Called under the lock."""
        sequence = self.prefix + tokens
        # Keep what the context already holds of this sequence (the system prompt, and
        # the words the previous hypothesis shares): only the rest is evaluated.
        held = self.llama.input_ids[: self.llama.n_tokens].tolist()
        keep = 0
        while keep < min(len(held), len(sequence) - 1) and held[keep] == sequence[keep]:
            keep += 1
        self.llama.n_tokens = keep
        self.llama.eval(sequence[keep:])
        start = len(self.prefix) - 1  # the logits before each of the words' tokens
        logits = np.asarray(self.llama.scores[start: start + len(tokens)], dtype=np.float64)
        ends = end_signal(logits[-1], self.end_ids)  # before <|im_end|>: after the words
        logits -= logits.max(axis=1, keepdims=True)
        chosen = logits[np.arange(len(tokens)), tokens]
        return float((chosen - np.log(np.exp(logits).sum(axis=1))).sum()), ends
