"""The shared STT and TTS wrappers (voxlive/sched/stt.py, tts.py) with scripted models.

The models here are scripted stand-ins (they record what they were asked and block on
events), because the point is the scheduling: who runs with whom, and in what order.
The real whisper batch is tested in test_sched_models.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from voxlive.backends.base import Transcript
from voxlive.sched.fair import ReplyPacer
from voxlive.sched.reply import _CURRENT
from voxlive.sched.stt import BatchedSTT
from voxlive.sched.tts import FairTTS

JOIN_S = 10.0  # a safety net for a broken wrapper, never a timing assertion


class ScriptedSTT:
    """Answers each utterance with its length; the first pass blocks until released."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.first_pass = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def recognise_many(self, audios: list[np.ndarray]) -> list[Transcript]:
        self.batches.append(len(audios))
        if len(self.batches) == 1:
            self.first_pass.set()
            self.release.wait(JOIN_S)
        if self.fail:
            raise RuntimeError("scripted failure")
        return [Transcript(f"{audio.size} samples", 0.9) for audio in audios]


def _in_threads(stt: BatchedSTT, sizes: list[int], wait_first: ScriptedSTT
                ) -> tuple[dict[int, object], list[threading.Thread]]:
    results: dict[int, object] = {}

    def ask(size: int) -> None:
        try:
            results[size] = stt.recognise(np.zeros(size, np.float32)).text
        except Exception as exc:
            results[size] = exc

    first = threading.Thread(target=ask, args=(sizes[0],))
    first.start()
    assert wait_first.first_pass.wait(JOIN_S)
    others = [threading.Thread(target=ask, args=(size,)) for size in sizes[1:]]
    for thread in others:
        thread.start()
    while len(stt._queue) < len(others):  # all of them are waiting for the model
        time.sleep(0.001)
    return results, [first, *others]


def test_utterances_that_wait_together_go_in_one_batch() -> None:
    inner = ScriptedSTT()
    stt = BatchedSTT(inner)
    results, threads = _in_threads(stt, [100, 200, 300, 400], inner)
    inner.release.set()
    for thread in threads:
        thread.join(JOIN_S)
    assert inner.batches == [1, 3]  # the first ran at once, alone; the rest together
    assert results == {n: f"{n} samples" for n in (100, 200, 300, 400)}
    assert stt.stats.mean_batch == 2.0 and stt.stats.first_waits == 4


def test_a_failing_batch_fails_every_request_in_it() -> None:
    inner = ScriptedSTT(fail=True)
    stt = BatchedSTT(inner)
    results, threads = _in_threads(stt, [100, 200, 300], inner)
    inner.release.set()
    for thread in threads:
        thread.join(JOIN_S)
    assert all(isinstance(r, RuntimeError) for r in results.values()) and len(results) == 3


def test_a_batch_holds_at_most_max_batch() -> None:
    inner = ScriptedSTT()
    stt = BatchedSTT(inner, max_batch=2)
    _, threads = _in_threads(stt, [1, 2, 3, 4, 5], inner)
    inner.release.set()
    for thread in threads:
        thread.join(JOIN_S)
    assert inner.batches == [1, 2, 2]


class ScriptedTTS:
    """One chunk of 0.5 s per sentence; the first sentence blocks until released."""

    sample_rate = 1000

    def __init__(self) -> None:
        self.said: list[str] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        self.said.append(text)
        if len(self.said) == 1:
            self.started.set()
            self.release.wait(JOIN_S)
        yield np.zeros(500, np.float32)


def _speak(tts: FairTTS, text: str, pacer: ReplyPacer | None,
           stop: threading.Event | None = None) -> threading.Thread:
    def run() -> None:
        _CURRENT.set(pacer)
        list(tts.synthesize(text, stop=stop))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting(tts: FairTTS, count: int) -> None:
    while len(tts._queue) < count:
        time.sleep(0.001)


def test_a_first_sentence_goes_before_another_calls_next_sentence() -> None:
    inner = ScriptedTTS()
    tts = FairTTS(inner)
    now = time.monotonic()
    speaking = ReplyPacer(now - 1.0, margin_s=0.0)
    speaking.made(now - 0.5, 3.0)  # its audio lasts until now + 2.5 s
    threads = [_speak(tts, "busy", None)]
    assert inner.started.wait(JOIN_S)
    threads.append(_speak(tts, "second sentence of a speaking reply", speaking))
    _waiting(tts, 1)
    threads.append(_speak(tts, "first sentence of a new reply", ReplyPacer(now)))
    _waiting(tts, 2)
    inner.release.set()
    for thread in threads:
        thread.join(JOIN_S)
    assert inner.said == ["busy", "first sentence of a new reply",
                          "second sentence of a speaking reply"]
    assert speaking.seconds == pytest.approx(3.5)  # its own chunk counted as made
    assert tts.stats.batches == 3 and tts.stats.first_waits == 2


def test_a_sentence_cancelled_while_it_waits_is_never_made() -> None:
    inner = ScriptedTTS()
    tts = FairTTS(inner)
    threads = [_speak(tts, "busy", None)]
    assert inner.started.wait(JOIN_S)
    stop = threading.Event()
    threads.append(_speak(tts, "cancelled", ReplyPacer(time.monotonic()), stop))
    _waiting(tts, 1)
    stop.set()
    threads[1].join(JOIN_S)
    assert not threads[1].is_alive() and len(tts._queue) == 0
    inner.release.set()
    threads[0].join(JOIN_S)
    assert inner.said == ["busy"]


class BatchingTTS(ScriptedTTS):
    """A backend that makes batches of `max_batch` sentences (as Parler does) and counts
    them into the stats the scheduler gives it: here the 1st-2nd, 3rd-4th, 5th."""

    max_batch = 2

    def __init__(self) -> None:
        super().__init__()
        self.batch_stats = None
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.said.append(text)
            if len(self.said) in (2, 4):
                self.batch_stats.batch(2)
            if len(self.said) == 5:
                self.batch_stats.batch(1)
            if len(self.said) == 4:
                self.started.set()
        try:
            self.release.wait(JOIN_S)
            yield np.zeros(500, np.float32)
        finally:
            with self._lock:
                self.inside -= 1


def test_a_batching_backend_holds_two_batches_of_sentences_at_once() -> None:
    """The generation it runs and the next one, which it fills with the most urgent."""
    inner = BatchingTTS()
    tts = FairTTS(inner)
    assert tts.capacity == 4 and inner.batch_stats is tts.stats
    now = time.monotonic()
    threads = [_speak(tts, f"sentence {n}", ReplyPacer(now + n)) for n in range(4)]
    assert inner.started.wait(JOIN_S)  # all four inside the backend together
    threads.append(_speak(tts, "fifth", ReplyPacer(now + 4)))
    _waiting(tts, 1)  # the fifth waits for a free place
    assert len(inner.said) == 4
    inner.release.set()
    for thread in threads:
        thread.join(JOIN_S)
    assert inner.said[4] == "fifth" and inner.most_inside == 4
    # The backend counted its batches; the scheduler counted no batches of one of its own.
    assert (tts.stats.batches, tts.stats.items) == (3, 5)
