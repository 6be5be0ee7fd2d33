"""Speech synthesis shared by every call: the most urgent sentence first, as many at once
as the voice takes (one for piper).

A CPU voice (piper) makes a sentence in one ONNX run of a few hundred milliseconds and
uses the cores it is given, so sentences from different calls run one after another, and
the order is what matters: a call's first sentence (its caller is waiting in silence) goes
before another call's second sentence (made while that call's first one plays). The order
is sched/fair.py's: earliest deadline first, where a reply's next sentence is due when the
audio it has made runs out (its ReplyPacer, sched/reply.py).

A backend that batches (Parler-TTS: `max_batch`, voxlive/backends/parler_batch.py) is let
have two batches' worth of sentences, the most urgent first, and fills each generation
with the most urgent it holds; it counts its batches into this scheduler's `stats`.
Piper's VITS voices take one sentence per run (the exported model cuts no padding from a
batch), so with piper the gain is in the order, not in batching: its mean batch is 1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from voxlive.latency import now
from voxlive.sched.fair import FairQueue, StageStats
from voxlive.sched.reply import current_reply

POLL_S = 0.05
"""How often a waiting sentence checks its stop flag (a barge-in while it waits)."""


class FairTTS:
    """Wraps a TTS (same interface); sentences take the voice in deadline order."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.stats = StageStats()
        batch = max(1, int(getattr(inner, "max_batch", 1)))
        self.capacity = 1 if batch == 1 else 2 * batch
        """Sentences the backend may hold: a batching backend the generation it runs and
        the next one, which it fills with the most urgent it holds. (Only as many as one
        batch, and a call's first sentence could wait behind the next batch's later
        sentences, let in before it came.)"""
        if self.capacity > 1:
            inner.batch_stats = self.stats  # the backend counts the batches it makes
        self._queue: FairQueue[object] = FairQueue()
        self._changed = threading.Condition()
        self._running = 0

    def __getattr__(self, name: str) -> Any:  # description, sample_rate, ...
        return getattr(self.inner, name)

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        pacer = current_reply()
        asked = now()
        first = pacer is None or not pacer.started
        if not self._acquire(pacer.deadline if pacer is not None else asked, asked, stop):
            return
        started = now()
        if first:
            self.stats.waited(started - asked)
        if self.capacity == 1:
            self.stats.batch(1)
        try:
            for chunk in self.inner.synthesize(text, style, stop):
                if pacer is not None:
                    pacer.made(now(), len(chunk) / self.inner.sample_rate)
                yield chunk
        finally:
            self._release()

    def _acquire(self, deadline: float, asked: float, stop: threading.Event | None) -> bool:
        ticket = object()
        with self._changed:
            self._queue.push(ticket, deadline, asked)
            while self._running >= self.capacity or self._queue.peek() is not ticket:
                if stop is not None and stop.is_set():
                    self._queue.discard(ticket)
                    self._changed.notify_all()
                    return False
                self._changed.wait(POLL_S)
            self._queue.take()
            self._running += 1
            return True

    def _release(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()

    def gauges(self) -> dict[str, float]:
        return self.stats.gauges("tts")
