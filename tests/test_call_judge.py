"""The runtime side of the end-of-turn detector (voxlive/turn/call_judge.py), with a
SCRIPTED DETECTOR (a test double: its scores and its failures are set by the test): the
verdict reaches the core, and a detector that raises or hangs answers JudgeFailed."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np

from voxlive.config import TurnDetectorConfig
from voxlive.turn.call_judge import CallTurnJudge
from voxlive.turn.detector import EndOfTurnDetector
from voxlive.turn.end_of_turn import JudgeFailed, JudgeTurn, TurnJudged, VoiceJudged


class Scripted:
    """A probability model double: returns `score`, raises `error`, or waits for `release`."""

    description = "scripted"

    def __init__(self, score: float = 0.9, error: Exception | None = None,
                 hang: bool = False):
        self.score, self.error, self.hang = score, error, hang
        self.release = threading.Event()
        self.seen: list[object] = []

    def probability(self, item: object) -> float:
        self.seen.append(item)
        if self.hang:
            self.release.wait(5)
        if self.error is not None:
            raise self.error
        return self.score


def judge_with(audio: Scripted, text: Scripted, timeout_ms: int = 1000,
               voice_alone: float | None = None
               ) -> tuple[CallTurnJudge, list[Any], list[dict[str, Any]]]:
    config = TurnDetectorConfig(backend="smart-turn+text", timeout_ms=timeout_ms,
                                audio_weight=0.5, threshold=0.5, voice_alone=voice_alone)
    handled: list[Any] = []
    emitted: list[dict[str, Any]] = []
    judge = CallTurnJudge(EndOfTurnDetector(config, audio, text), handled.append,
                          lambda kind, **fields: emitted.append({"type": kind, **fields}))
    return judge, handled, emitted


async def voice_heard(handled: list[Any]) -> None:
    """Until the voice's own score is in (a worker thread on a busy machine)."""
    for _ in range(500):
        if any(isinstance(h, VoiceJudged) for h in handled):
            return
        await asyncio.sleep(0.01)


async def settle(handled: list[Any]) -> None:
    """Until a verdict (or a failure) is in: the voice's own score comes before it."""
    for _ in range(500):
        if any(not isinstance(h, VoiceJudged) for h in handled):
            return
        await asyncio.sleep(0.01)


async def test_the_verdict_mixes_both_signals_and_reaches_the_core() -> None:
    audio, text = Scripted(0.2), Scripted(0.9)
    judge, handled, emitted = judge_with(audio, text)
    judge.start(JudgeTurn(3, 0.0, 1.0), np.zeros(16_000, np.float32))
    await voice_heard(handled)
    await asyncio.sleep(0.05)
    assert handled == [VoiceJudged(3, 0.2)]  # the voice is in; the verdict waits for words
    await judge.transcribed(3, "What is the time?")
    await settle(handled)
    assert handled[1:] == [TurnJudged(3, complete=True)]  # 0.5 * 0.2 + 0.5 * 0.9 = 0.55
    assert text.seen == ["What is the time?"]
    [event] = emitted
    assert event["type"] == "turn_judged" and event["probability"] == 0.55
    assert (event["audio"], event["text"]) == (0.2, 0.9)


async def test_a_failing_detector_answers_judge_failed() -> None:
    judge, handled, _ = judge_with(Scripted(error=RuntimeError("boom")), Scripted())
    judge.start(JudgeTurn(1, 0.0, 1.0), np.zeros(16_000, np.float32))
    await judge.transcribed(1, "hello")
    await settle(handled)
    [failed] = handled
    assert isinstance(failed, JudgeFailed) and "boom" in failed.message


async def test_a_hanging_detector_times_out() -> None:
    text = Scripted(hang=True)
    judge, handled, _ = judge_with(Scripted(), text, timeout_ms=50)
    judge.start(JudgeTurn(1, 0.0, 1.0), np.zeros(16_000, np.float32))
    await judge.transcribed(1, "hello")
    text.release.set()
    await settle(handled)
    [voice, failed] = handled
    assert voice == VoiceJudged(1, 0.9)
    assert isinstance(failed, JudgeFailed) and "50 ms" in failed.message


async def test_a_late_audio_score_leaves_the_words_to_decide() -> None:
    audio = Scripted(0.1, hang=True)
    judge, handled, emitted = judge_with(audio, Scripted(0.9), timeout_ms=50)
    judge.start(JudgeTurn(1, 0.0, 1.0), np.zeros(16_000, np.float32))
    await judge.transcribed(1, "What is the time?")
    await settle(handled)
    audio.release.set()
    assert handled == [TurnJudged(1, complete=True)]
    assert emitted[0]["audio"] is None and emitted[0]["text"] == 0.9


async def test_a_cancelled_turn_gives_no_verdict() -> None:
    judge, handled, _ = judge_with(Scripted(), Scripted())
    judge.start(JudgeTurn(1, 0.0, 1.0), np.zeros(16_000, np.float32))
    judge.cancel(1)  # the user spoke again: the turn was reopened
    await judge.transcribed(1, "hello")
    await asyncio.sleep(0.1)
    assert handled == []
    await judge.close()


async def test_without_a_detector_the_fixed_rule_decides() -> None:
    handled: list[Any] = []
    judge = CallTurnJudge(None, handled.append, lambda kind, **fields: None)
    judge.start(JudgeTurn(2, 0.0, 1.0), np.zeros(160, np.float32))
    assert isinstance(handled[0], JudgeFailed)


async def test_a_sure_voice_decides_alone_and_the_words_are_not_scored() -> None:
    audio, text = Scripted(0.9), Scripted(0.1)
    judge, handled, emitted = judge_with(audio, text, voice_alone=0.8)
    judge.start(JudgeTurn(2, 0.0, 1.0), np.zeros(16_000, np.float32))
    await settle(handled)  # no transcript needed
    assert handled == [VoiceJudged(2, 0.9), TurnJudged(2, complete=True)]
    await judge.transcribed(2, "I would like to")
    assert text.seen == []  # the reply does not wait for a score nobody needs
    assert emitted[0]["text"] is None and emitted[0]["after_transcript_ms"] is None


async def test_an_unsure_voice_waits_for_the_words() -> None:
    judge, handled, _ = judge_with(Scripted(0.7), Scripted(0.1), voice_alone=0.8)
    judge.start(JudgeTurn(2, 0.0, 1.0), np.zeros(16_000, np.float32))
    await voice_heard(handled)
    await asyncio.sleep(0.05)
    assert handled == [VoiceJudged(2, 0.7)]
    await judge.transcribed(2, "I would like to")
    await settle(handled)
    assert handled[1:] == [TurnJudged(2, complete=False)]  # 0.5 * 0.7 + 0.5 * 0.1


async def test_a_question_asked_again_replaces_the_first() -> None:
    """An early question (before the speculative point), then speech, then the next
    pause asks again for the same generation: only the second is answered."""
    audio = Scripted(0.9, hang=True)
    judge, handled, _ = judge_with(audio, Scripted(0.9))
    judge.start(JudgeTurn(1, 0.0, 1.0), np.zeros(16_000, np.float32))
    await asyncio.sleep(0.02)
    audio.hang = False
    judge.start(JudgeTurn(1, 0.0, 2.0), np.zeros(32_000, np.float32))
    audio.release.set()  # the first question's score comes back too, unheard
    await judge.transcribed(1, "What is the time?")
    await settle(handled)
    await asyncio.sleep(0.05)
    assert handled == [VoiceJudged(1, 0.9), TurnJudged(1, complete=True)]
    assert [a.size for a in audio.seen] == [16_000, 32_000]
