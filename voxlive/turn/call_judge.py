"""One call's end-of-turn judging: the runtime side of the core's `JudgeTurn`.

Kept out of CallSession so that the session stays about turns. At the speculative pause
the audio signal runs in a worker thread beside STT; the text signal is scored on the
speculative transcript as soon as STT has it (`transcribed`, which the session awaits
before the reply starts: a few tens of milliseconds, and the verdict is then ready long
before the reply's first audio, instead of queueing behind the LLM for the CPU), and the
verdict goes back to the core as `TurnJudged`. A detector that raises, or has no verdict within its
`timeout_ms` of wall-clock time, answers `JudgeFailed`: the core falls back to the fixed
silence rule and says so. The timeout bounds the detector's own work, each signal from
when it can start (the text one from the transcript's arrival): STT's time is STT's; an
audio score later than that, beside a text score in time, leaves the words to decide.
Each verdict is also an event for the page and the benchmark (`turn_judged`: the
signals, and the detector's own time).

The voice's score goes to the core as soon as it is in (`VoiceJudged`): a voice sure
enough of itself ends the turn alone (turn/end_of_turn.py), and the words are then not
scored at all, so the reply does not wait for them either. The core may ask before the
speculative point (for the turn that pause would end); a question asked again for the
same generation (speech came back in between) replaces the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voxlive.turn.detector import EndOfTurnDetector, Verdict
from voxlive.turn.end_of_turn import (
    JudgeFailed,
    JudgeTurn,
    SemanticPolicy,
    TurnJudged,
    VoiceJudged,
    voice_decides,
)

log = logging.getLogger(__name__)


class CallTurnJudge:
    def __init__(self, detector: EndOfTurnDetector | None, handle: Callable[[Any], None],
                 emit: Callable[..., None]):
        self.detector = detector  # None: the profile ends turns on silence alone
        self._handle = handle  # the session's: feeds an event to the core
        self._emit = emit  # the session's `_emit(kind, **fields)`
        self._tasks: dict[int, asyncio.Task[None]] = {}
        # per turn: (P(complete) from the words, its seconds, when the transcript came)
        self._texts: dict[int, asyncio.Future[tuple[float | None, float, float]]] = {}

    def start(self, action: JudgeTurn, audio: np.ndarray) -> None:
        if self.detector is None:
            self._handle(JudgeFailed(action.generation, "no end-of-turn detector loaded"))
            return
        self.cancel(action.generation)  # an earlier question about the same turn is void
        loop = asyncio.get_running_loop()
        self._texts[action.generation] = loop.create_future()
        task = loop.create_task(self._judge(action.generation, audio))
        self._tasks[action.generation] = task
        task.add_done_callback(lambda done: self._forget(action.generation, done))

    async def transcribed(self, generation: int, text: str) -> None:
        """The speculative transcript of this generation's turn: scores the text signal
        (within the detector's timeout). Never raises: a failure reaches the verdict."""
        future = self._texts.get(generation)
        if future is None or future.done() or self.detector is None:
            return
        arrived = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            probability, seconds = await asyncio.wait_for(loop.run_in_executor(
                None, self.detector.text_probability, text),
                self.detector.config.timeout_ms / 1000)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # TimeoutError included: the verdict reports it
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result((probability, seconds, arrived))

    def cancel(self, generation: int) -> None:
        task = self._tasks.pop(generation, None)
        if task is not None:
            task.cancel()
        self._texts.pop(generation, None)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _forget(self, generation: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(generation) is task:  # not the question that replaced it
            self._tasks.pop(generation, None)
            self._texts.pop(generation, None)

    async def _judge(self, generation: int, audio: np.ndarray) -> None:
        assert self.detector is not None
        started = time.perf_counter()
        try:
            verdict, transcript_wait = await self._verdict(generation, audio)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._handle(JudgeFailed(generation, f"the turn detector gave no verdict within "
                                     f"{self.detector.config.timeout_ms} ms"))
            return
        except Exception as exc:
            log.exception("turn detector failed")
            self._handle(JudgeFailed(generation, f"the turn detector failed: {exc}"))
            return
        done = time.perf_counter()
        self._emit(
            "turn_judged", turn=generation, complete=verdict.complete,
            probability=round(verdict.probability, 3),
            audio=None if verdict.audio is None else round(verdict.audio, 3),
            text=None if verdict.text is None else round(verdict.text, 3),
            compute_ms=round(verdict.compute_s * 1000, 1),
            audio_ms=round(verdict.audio_s * 1000, 1), text_ms=round(verdict.text_s * 1000, 1),
            decision_ms=round((done - started) * 1000, 1),
            after_transcript_ms=(None if transcript_wait is None
                                 else round((done - transcript_wait) * 1000, 1)),
        )
        self._handle(TurnJudged(generation, verdict.complete))

    async def _verdict(self, generation: int, audio: np.ndarray
                       ) -> tuple[Verdict, float | None]:
        """(the verdict, when the transcript arrived or None); TimeoutError past the budget."""
        assert self.detector is not None
        loop = asyncio.get_running_loop()
        budget = self.detector.config.timeout_ms / 1000
        texts = self._texts[generation]
        audio_p, audio_s = None, 0.0
        try:
            audio_p, audio_s = await asyncio.wait_for(loop.run_in_executor(
                None, self.detector.audio_probability, audio), budget)
        except TimeoutError:
            if not self.detector.needs_text:
                raise
            # a starved CPU: the words decide alone
        if audio_p is not None:
            self._handle(VoiceJudged(generation, audio_p))
            if voice_decides(self.detector.policy, audio_p) or not self.detector.needs_text:
                return self.detector.decide(audio_p, None, audio_s), None
        text_p, text_s, arrived = await texts
        return self.detector.decide(audio_p, text_p, audio_s, text_s), arrived


def semantic_policy(detector: EndOfTurnDetector | None) -> SemanticPolicy | None:
    """The core's rules for this detector (None: no detector, the fixed silence rule)."""
    return None if detector is None else detector.policy
