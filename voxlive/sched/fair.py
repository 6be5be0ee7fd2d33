"""Who gets a shared model next: earliest deadline first, where a deadline is when a call
would hear silence. Sans-I/O: no threads, no clock; times are passed in.

Why deadlines: the models are shared by every call, and a model works on one thing at a
time (llama.cpp holds one context; piper and whisper saturate the CPU). First come, first
served makes the second caller's first audio wait behind the first caller's whole reply.
What a caller notices is silence, so each piece of work carries the moment its call runs
out of audio without it:

- work towards a reply's first audio (its transcript, the LLM up to its first sentence,
  that sentence's speech) is already late: its deadline is when it was asked for, so
  first audio goes in order of arrival, before any call's second sentence;
- work on a reply that is already speaking is due when the audio made so far runs out
  (`ReplyPacer`), minus a margin for making the next sentence.

Earliest deadline first cannot starve anyone: a new request's deadline is never earlier
than its arrival, so a waiting job is passed only by jobs that were due before it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

CONTINUE_MARGIN_S = 1.5
"""A speaking reply's next sentence is due this long before its audio runs out: about
what a sentence of LLM tokens and its speech take on a small CPU."""


@dataclass
class ReplyPacer:
    """How urgent one reply's next piece of work is, from what it has made so far.

    `submitted`: when the reply asked; `made(at, seconds)`: `seconds` of audio (or of
    text, at a speaking rate) became ready at `at`. Until something is ready the reply
    is waiting for its first audio, and its deadline is `submitted`.
    """

    submitted: float
    margin_s: float = CONTINUE_MARGIN_S
    first_ready: float | None = None
    seconds: float = 0.0

    def made(self, at: float, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.first_ready is None:
            self.first_ready = at
        self.seconds += seconds

    @property
    def deadline(self) -> float:
        if self.first_ready is None:
            return self.submitted
        return max(self.submitted, self.first_ready + self.seconds - self.margin_s)

    @property
    def started(self) -> bool:
        """Has this reply made any audio yet (its first-audio work is done)?"""
        return self.first_ready is not None


@dataclass(order=True)
class _Entry(Generic[T]):
    deadline: float
    order: int
    item: T = field(compare=False)
    queued_at: float = field(compare=False, default=0.0)
    removed: bool = field(compare=False, default=False)


class FairQueue(Generic[T]):
    """Items waiting for a shared model, taken earliest deadline first (ties: first in).

    `take_batch` takes several at once for a model that batches (whisper): the most
    urgent, then the next ones, up to `max_items`.
    """

    def __init__(self) -> None:
        self._heap: list[_Entry[T]] = []
        self._entries: dict[int, _Entry[T]] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def push(self, item: T, deadline: float, now: float = 0.0) -> None:
        """Queue `item` (again: its old place is dropped) with its deadline."""
        self.discard(item)
        entry = _Entry(deadline, next(self._order), item, now)
        self._entries[id(item)] = entry
        heapq.heappush(self._heap, entry)

    def discard(self, item: T) -> bool:
        """Take `item` out of the queue (a cancelled request); whether it was there."""
        entry = self._entries.pop(id(item), None)
        if entry is None:
            return False
        entry.removed = True
        return True

    def peek_deadline(self) -> float | None:
        """The most urgent waiting item's deadline, or None when nothing waits."""
        self._drop_removed()
        return self._heap[0].deadline if self._heap else None

    def peek(self) -> T | None:
        """The most urgent waiting item (left in the queue), or None."""
        self._drop_removed()
        return self._heap[0].item if self._heap else None

    def take(self) -> tuple[T, float] | None:
        """The most urgent item and when it was queued, or None."""
        self._drop_removed()
        if not self._heap:
            return None
        entry = heapq.heappop(self._heap)
        del self._entries[id(entry.item)]
        return entry.item, entry.queued_at

    def take_batch(self, max_items: int) -> list[tuple[T, float]]:
        """Up to `max_items` items, most urgent first."""
        batch = []
        while len(batch) < max_items and (got := self.take()) is not None:
            batch.append(got)
        return batch

    def __iter__(self) -> Iterator[T]:
        return iter([e.item for e in sorted(self._entries.values())])

    def _drop_removed(self) -> None:
        while self._heap and self._heap[0].removed:
            heapq.heappop(self._heap)


@dataclass
class StageStats:
    """What a shared stage did: batches and their sizes, and how long first-audio work
    waited for the model because another call had it (the queueing a caller hears).
    The model server's engines (serving/engines.py) count their batches with it too."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    first_waits: int = 0
    first_wait_s: float = 0.0
    max_first_wait_s: float = 0.0

    def batch(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)

    def waited(self, seconds: float) -> None:
        self.first_waits += 1
        self.first_wait_s += max(0.0, seconds)
        self.max_first_wait_s = max(self.max_first_wait_s, seconds)

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0

    def summary(self) -> dict[str, float]:
        """The batch counts (the model server's `stats()`)."""
        return {"batches": self.batches, "items": self.items, "largest": self.largest,
                "mean_batch_size": round(self.mean_batch, 2)}

    def gauges(self, stage: str) -> dict[str, float]:
        """/metrics gauges (voxlive_sched_<stage>_...)."""
        return {f"sched_{stage}_batches": self.batches, f"sched_{stage}_items": self.items,
                f"sched_{stage}_first_waits": self.first_waits,
                f"sched_{stage}_first_wait_seconds": round(self.first_wait_s, 4),
                f"sched_{stage}_max_first_wait_seconds": round(self.max_first_wait_s, 4)}
