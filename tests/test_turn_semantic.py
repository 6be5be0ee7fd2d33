"""Timeline tests of the semantic end of turn in the sans-I/O core, with a scripted
detector: the test plays the detector's part by sending its verdict (or its failure) as
the runtime would. Exact stream times, no sleeps."""

from __future__ import annotations

from tests.test_turn_core import Timeline
from voxlive.turn.core import (
    Cancel,
    CommitRule,
    JudgeFailed,
    JudgeTurn,
    ReportError,
    Respond,
    State,
    Transcribe,
    Transcribed,
    TurnCommitted,
    TurnCore,
    TurnJudged,
    UserSaid,
)


def semantic(**settings: object) -> Timeline:
    tl = Timeline(speculative_silence_ms=160, end_of_turn_silence_ms=480,
                  max_incomplete_silence_ms=2000, pre_roll_ms=0, **settings)
    tl.core = TurnCore(tl.core.settings, vad_threshold=0.5, semantic=True)
    return tl


def test_complete_commits_at_the_speculative_point() -> None:
    tl = semantic()
    tl.speech(1.28)
    out = tl.silence(0.16)  # the speculative point
    [judge] = [a for a in out if isinstance(a, JudgeTurn)]
    [transcribe] = tl.of(Transcribe)
    assert (judge.generation, judge.start, judge.end) == (1, transcribe.start, transcribe.end)
    assert tl.of(TurnCommitted) == []  # no verdict yet: no commit
    assert tl.event(Transcribed(1, "What is the capital of France?")) == [
        UserSaid(1, "What is the capital of France?"), Respond(1, "What is the capital of France?")]
    assert tl.event(TurnJudged(1, complete=True)) == [TurnCommitted(1, CommitRule.SEMANTIC)]
    assert tl.silence(1.0) == []  # committed once


def test_a_verdict_before_the_transcript_commits_too() -> None:
    tl = semantic()
    tl.speech(1.0)
    tl.silence(0.192)
    assert tl.event(TurnJudged(1, complete=True)) == [TurnCommitted(1, CommitRule.SEMANTIC)]
    assert tl.event(Transcribed(1, "Hello there.")) == [
        UserSaid(1, "Hello there."), Respond(1, "Hello there.")]


def test_no_verdict_waits_past_the_fixed_silence() -> None:
    tl = semantic()
    tl.speech(1.0)
    tl.silence(0.96)  # twice the fixed 480 ms: a slow detector still holds the turn
    assert tl.of(TurnCommitted) == []


def test_incomplete_waits_then_ends_at_the_maximum_silence() -> None:
    tl = semantic()
    tl.speech(1.0)
    tl.silence(0.16)
    tl.event(Transcribed(1, "I would like to"))
    assert tl.event(TurnJudged(1, complete=False)) == []
    tl.silence(1.792)  # 1952 ms of silence in all
    assert tl.of(TurnCommitted) == []
    assert tl.silence(0.064) == [TurnCommitted(1, CommitRule.TIMEOUT)]  # 2016 ms >= 2000


def test_incomplete_then_speech_reopens_and_the_whole_turn_is_judged_again() -> None:
    tl = semantic()
    tl.speech(1.0)  # "I would like to ..."
    tl.silence(0.16)
    tl.event(Transcribed(1, "I would like to"))
    tl.event(TurnJudged(1, complete=False))
    tl.silence(0.8)  # a thinking pause, longer than the fixed 480 ms rule
    assert tl.of(TurnCommitted) == []
    tl.speech(0.128)  # "... order a pizza"
    assert Cancel(1, barge_in=False) in tl.actions
    assert tl.core.state == State.USER_SPEAKING
    tl.speech(0.8)
    tl.silence(0.16)
    judge = tl.of(JudgeTurn)[-1]
    assert judge.generation == tl.core.generation > 1 and judge.start == 0.0  # whole turn
    assert tl.event(TurnJudged(1, complete=True)) == []  # the old verdict is stale
    assert tl.event(TurnJudged(judge.generation, complete=True)) == [
        TurnCommitted(judge.generation, CommitRule.SEMANTIC)]


def test_failure_falls_back_to_the_fixed_rule_and_says_so_once() -> None:
    tl = semantic()
    tl.speech(1.0)
    tl.silence(0.16)
    out = tl.event(JudgeFailed(1, "the turn detector gave no verdict within 1500 ms"))
    [error] = [a for a in out if isinstance(a, ReportError)]
    assert error.stage == "turn_detector" and "1500 ms" in error.message
    assert "480 ms" in error.message
    assert tl.of(TurnCommitted) == []  # 160 ms of silence: the fixed rule waits for 480
    tl.silence(0.288)
    assert tl.of(TurnCommitted) == []
    assert tl.silence(0.032) == [TurnCommitted(1, CommitRule.TIMEOUT)]  # 480 ms
    tl.event(Transcribed(1, "hello"))
    # The next turn asks the detector again; a second failure is not reported again.
    tl.speech(1.0)
    tl.silence(0.16)
    second = tl.core.generation
    assert tl.of(JudgeTurn)[-1].generation == second
    assert tl.event(JudgeFailed(second, "the turn detector failed: boom")) == []
    tl.silence(0.32)
    assert tl.of(TurnCommitted)[-1] == TurnCommitted(second, CommitRule.TIMEOUT)
    assert len(tl.of(ReportError)) == 1


def test_a_late_failure_after_the_fixed_silence_commits_at_once() -> None:
    tl = semantic()
    tl.speech(1.0)
    tl.silence(0.6)
    assert tl.event(JudgeFailed(1, "the turn detector failed: boom"))[-1] == TurnCommitted(
        1, CommitRule.TIMEOUT)


def test_a_too_long_turn_is_cut_with_the_max_utterance_rule() -> None:
    tl = semantic(max_utterance_s=2.0)
    tl.speech(2.5)
    assert tl.of(TurnCommitted) == [TurnCommitted(1, CommitRule.MAX_UTTERANCE)]
    assert tl.of(JudgeTurn) == []  # nothing to judge: the cut decided


def test_without_a_detector_nothing_is_judged_and_the_fixed_rule_holds() -> None:
    tl = Timeline(speculative_silence_ms=160, end_of_turn_silence_ms=480)
    tl.speech(1.0)
    tl.silence(0.48)
    assert tl.of(JudgeTurn) == []
    assert tl.of(TurnCommitted) == [TurnCommitted(1, CommitRule.TIMEOUT)]
