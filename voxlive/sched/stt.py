"""Speech recognition shared by every call: utterances that wait together go in one batch.

Each call transcribes in a worker thread; one whisper model serves them all, one pass at a
time. Instead of queueing behind the model one by one, the requests that arrive while a
pass runs are gathered, and the next pass takes them all at once (faster-whisper's
CTranslate2 model decodes a batch of windows in one `generate`: serving/stt_batch.py,
with the backend's own rules for a doubtful short-window transcript). No request waits
for a batch to fill: the first one starts at once, as before; batching costs nothing
when calls are few and saves passes when they are many. The most urgent requests go
first when more wait than a batch holds (sched/fair.py; a transcript is first-audio
work: due when asked for).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxlive.backends.base import Transcript
from voxlive.latency import now
from voxlive.sched.fair import FairQueue, StageStats
from voxlive.serving.stt_batch import recognise_batch

MAX_BATCH = 8


@dataclass(eq=False)
class _Job:
    audio: np.ndarray
    result: Transcript | None = None
    error: BaseException | None = None
    done: bool = False


class BatchedSTT:
    """Wraps an STT (same interface); a pass is serving/stt_batch.py's `recognise_batch`."""

    def __init__(self, inner: Any, max_batch: int = MAX_BATCH,
                 clock: Callable[[], float] = now):
        self.inner = inner
        self.max_batch = max_batch
        self.stats = StageStats()
        self._clock = clock
        self._queue: FairQueue[_Job] = FairQueue()
        self._changed = threading.Condition()
        self._busy = False

    def __getattr__(self, name: str) -> Any:  # description, config, recognise_full_window
        return getattr(self.inner, name)

    def recognise(self, audio: np.ndarray) -> Transcript:
        job = _Job(audio)
        with self._changed:
            t = self._clock()
            self._queue.push(job, t, t)
        while True:
            with self._changed:
                while not job.done and self._busy:
                    self._changed.wait()
                if job.done:
                    return self._result(job)
                self._busy = True  # this thread runs the next pass, for everyone waiting
                batch = self._queue.take_batch(self.max_batch)
            self._run(batch)

    def _run(self, batch: list[tuple[_Job, float]]) -> None:
        started = self._clock()
        try:
            results = recognise_batch(self.inner, [job.audio for job, _ in batch])
            for (job, _), result in zip(batch, results, strict=True):
                job.result = result
        except BaseException as exc:  # noqa: B036 - every waiter gets it
            for job, _ in batch:
                job.error = exc
        with self._changed:
            self.stats.batch(len(batch))
            for job, queued_at in batch:
                job.done = True
                self.stats.waited(started - queued_at)
            self._busy = False
            self._changed.notify_all()

    @staticmethod
    def _result(job: _Job) -> Transcript:
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text

    def gauges(self) -> dict[str, float]:
        return self.stats.gauges("stt")
