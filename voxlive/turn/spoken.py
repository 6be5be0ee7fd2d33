"""What of an LLM's reply is said aloud: a length policy for speech, and no bookkeeping.

Why: a reply is listened to, not read. Someone asking a voice assistant a question waits
through every word, so a reply has a budget of sentences and of spoken seconds (words
at a speaking rate), not only the LLM's max_tokens, and stops at the end of a sentence,
never mid-word. When the budget is spent the LLM stream is closed, so generation stops
(the CPU goes back to listening). Small models also copy the notes that the runtime
keeps for them (interruptions, camera views, the user's tone): a sentence that echoes
such a note is not spoken (bookkeeping.py decides which).

`SpokenReply` is plain and synchronous (text pieces in, sentences to say out) so that
it is tested on scripted streams; `speak_stream` drives it from an LLM stream.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from voxlive.backends.base import ToolCall
from voxlive.turn.bookkeeping import echoes_bookkeeping
from voxlive.turn.chunker import SentenceChunker, speakable

_ENDS_SENTENCE = re.compile(r"[.!?…。！？][\"')\]»”]*$")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_SENTENCE_GAP = re.compile(r"(?<=[.!?…。！？])[\"')\]»”]*\s+")


@dataclass(frozen=True)
class ReplyBudget:
    """How much of a reply is spoken. `hard_cap` lets one over-long sentence run past
    the time budget by that factor before it is cut at a clause (a run-on sentence from
    a small model would otherwise go on to max_tokens)."""

    max_sentences: int = 2
    max_seconds: float = 12.0
    words_per_second: float = 2.6  # ~155 words a minute, a calm speaking rate
    hard_cap: float = 1.5

    def __post_init__(self) -> None:
        if self.max_sentences < 1 or self.max_seconds <= 0 or self.words_per_second <= 0:
            raise ValueError(f"a reply budget must allow some speech: {self}")


def spoken_seconds(text: str, words_per_second: float) -> float:
    """Speaking time estimated from the word count (numbers count as their digits' word)."""
    return len(_WORD.findall(text)) / words_per_second


def ends_sentence(text: str) -> bool:
    return bool(_ENDS_SENTENCE.search(text.strip()))


@dataclass
class SpokenReply:
    """Feed the LLM's text pieces; get the sentences to speak, until `done`.

    Rules, in order, for each chunk the sentence chunker completes:
    - a chunk that echoes bookkeeping is dropped (kept in `dropped`), uncounted;
    - a chunk that starts a new sentence is refused, and the reply is done, once
      `max_sentences` sentences were spoken or it would end past `max_seconds`
      (the first sentence is always spoken: an answer, however long, beats silence);
    - a chunk that continues a sentence (the chunker cut a long one at a clause) is
      spoken unless the reply would run past `hard_cap` x `max_seconds`;
    - at the end of the stream, an unfinished tail (max_tokens cut it mid-sentence) is
      dropped if a whole sentence was already spoken.
    """

    budget: ReplyBudget = field(default_factory=ReplyBudget)
    notes: Sequence[str] = ()
    spoken: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    done: bool = False
    sentences: int = 0
    seconds: float = 0.0
    _in_sentence: bool = False
    _in_brackets: bool = False
    _chunker: SentenceChunker = field(default_factory=SentenceChunker)

    def push(self, piece: str) -> list[str]:
        """The chunks to speak now that `piece` has arrived (none once done)."""
        if self.done:
            return []
        return self._admit_all(self._chunker.push(self._outside_brackets(piece)), final=False)

    def _outside_brackets(self, piece: str) -> str:
        """`piece` without [bracketed notes], across pieces: the chunker may cut a long
        first sentence at the ": " inside "[voice: excited]", and neither half would look
        like a tag any more."""
        out = []
        for ch in piece:
            if self._in_brackets:
                self._in_brackets = ch != "]"
            elif ch == "[":
                self._in_brackets = True
            else:
                out.append(ch)
        return "".join(out)

    def finish(self) -> list[str]:
        """The stream ended: what is left to speak of its tail."""
        if self.done:
            return []
        out = self._admit_all(self._chunker.flush(), final=True)
        # A stream that said nothing (it asked for a tool) leaves the reply open for the
        # stream that answers the tool's result.
        self.done = self.done or bool(self.spoken)
        return out

    def _admit_all(self, chunks: list[str], final: bool) -> list[str]:
        """The chunks' admitted sentences, as speakable text, one string per chunk (the
        chunker joins sentences shorter than its minimum: each is judged on its own)."""
        out = []
        for i, chunk in enumerate(chunks):
            parts = [p for p in _SENTENCE_GAP.split(speakable(chunk)) if p]
            last = final and i == len(chunks) - 1
            kept = [p for j, p in enumerate(parts)
                    if not self.done and self._admit(p, last and j == len(parts) - 1)]
            if kept:
                out.append(" ".join(kept))
        return out

    def _admit(self, text: str, final: bool) -> bool:
        if not any(ch.isalnum() for ch in text):
            return False
        if echoes_bookkeeping(text, self.notes):
            self.dropped.append(text)
            return False
        complete = ends_sentence(text)
        if final and not complete and self.sentences and not self._in_sentence:
            self.done = True  # cut off by max_tokens: do not say half a sentence
            return False
        seconds = spoken_seconds(text, self.budget.words_per_second)
        ends_at = self.seconds + seconds
        if not self._in_sentence and self.sentences and (
                self.sentences >= self.budget.max_sentences or ends_at > self.budget.max_seconds):
            self.done = True
            return False
        if self._in_sentence and ends_at > self.budget.max_seconds * self.budget.hard_cap:
            self.done = True
            return False
        self.spoken.append(text)
        self.seconds = ends_at
        self._in_sentence = not complete
        if complete:
            self.sentences += 1
            if self.sentences >= self.budget.max_sentences:
                self.done = True  # nothing more will be said: stop generating now
        return True


async def speak_stream(stream: AsyncIterator[str | ToolCall], reply: SpokenReply,
                       speak: Callable[[str], Awaitable[None]],
                       on_piece: Callable[[], None] | None = None) -> list[ToolCall]:
    """Speak `stream` through `reply`'s policy; returns the tool calls it made.

    The stream is closed as soon as the reply is done (or on any exit), which for the
    llama.cpp and OpenAI backends stops generation at the next token.
    """
    calls: list[ToolCall] = []
    try:
        async for piece in stream:
            if isinstance(piece, ToolCall):
                calls.append(piece)
                continue
            if on_piece is not None:
                on_piece()
            for sentence in reply.push(piece):
                await speak(sentence)
            if reply.done:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    for sentence in reply.finish():
        await speak(sentence)
    return calls


async def first_pieces(stream: AsyncIterator[str | ToolCall],
                       limit: int) -> AsyncIterator[str | ToolCall]:
    """At most `limit` text pieces of `stream` (a Realtime client's `max_output_tokens`);
    closing this closes `stream`, so generation stops too."""
    pieces = 0
    try:
        async for piece in stream:
            if not isinstance(piece, ToolCall):
                pieces += 1
                if pieces > limit:
                    return
            yield piece
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
