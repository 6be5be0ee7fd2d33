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
    SemanticPolicy,
    State,
    Transcribe,
    Transcribed,
    TurnCommitted,
    TurnCore,
    TurnJudged,
    UserSaid,
    VoiceJudged,
)


def semantic(policy: SemanticPolicy | None = None, **settings: object) -> Timeline:
    defaults = {"speculative_silence_ms": 160, "end_of_turn_silence_ms": 480,
                "max_incomplete_silence_ms": 2000, "pre_roll_ms": 0}
    tl = Timeline(**{**defaults, **settings})
    tl.core = TurnCore(tl.core.settings, vad_threshold=0.5, semantic=True, policy=policy)
    return tl


EARLY = SemanticPolicy(voice_alone=0.75, ask_silence_ms=64)


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
    assert "1000 ms of silence" in error.message
    assert tl.of(TurnCommitted) == []  # 160 ms of silence: the fixed rule waits for 1000
    tl.silence(0.8)  # past the plain 480 ms rule: a thinking pause is not cut there
    assert tl.of(TurnCommitted) == []
    assert tl.silence(0.064) == [TurnCommitted(1, CommitRule.TIMEOUT)]  # 1024 ms
    tl.event(Transcribed(1, "hello"))
    # The next turn asks the detector again; a second failure is not reported again.
    tl.speech(1.0)
    tl.silence(0.16)
    second = tl.core.generation
    assert tl.of(JudgeTurn)[-1].generation == second
    assert tl.event(JudgeFailed(second, "the turn detector failed: boom")) == []
    tl.silence(0.864)
    assert tl.of(TurnCommitted)[-1] == TurnCommitted(second, CommitRule.TIMEOUT)
    assert len(tl.of(ReportError)) == 1


def test_a_late_failure_after_the_fixed_silence_commits_at_once() -> None:
    tl = semantic()
    tl.speech(1.0)
    tl.silence(1.2)
    assert tl.event(JudgeFailed(1, "the turn detector failed: boom"))[-1] == TurnCommitted(
        1, CommitRule.TIMEOUT)


def test_the_failure_fallback_is_never_shorter_than_the_fixed_rule() -> None:
    tl = semantic(end_of_turn_silence_ms=1500, detector_failed_silence_ms=600)
    tl.speech(1.0)
    tl.silence(0.16)
    tl.event(JudgeFailed(1, "the turn detector failed: boom"))
    tl.silence(1.2)
    assert tl.of(TurnCommitted) == []
    assert tl.silence(0.16) == [TurnCommitted(1, CommitRule.TIMEOUT)]


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


# --- asked before the speculative point; the voice alone when it is sure -------------------


def test_the_detector_is_asked_early_for_the_turn_the_pause_would_end() -> None:
    tl = semantic(EARLY)
    tl.speech(1.28)
    out = tl.silence(0.064)
    assert out == [JudgeTurn(1, 0.0, 1.344)]  # the next generation; no STT yet
    assert tl.core.generation == 0 and tl.core.state == State.USER_SPEAKING
    tl.silence(0.096)  # the speculative point (160 ms): STT starts, no second question
    [transcribe] = tl.of(Transcribe)
    assert transcribe.generation == 1 and len(tl.of(JudgeTurn)) == 1


def test_a_sure_voice_before_the_speculative_point_commits_there() -> None:
    tl = semantic(EARLY)
    tl.speech(1.0)
    tl.silence(0.064)
    assert tl.event(VoiceJudged(1, 0.9)) == []  # heard early: the turn is not over yet
    out = tl.silence(0.096)
    assert out[-1] == TurnCommitted(1, CommitRule.SEMANTIC)  # with STT, at 160 ms
    assert tl.of(Transcribe)[0].generation == 1
    assert tl.event(Transcribed(1, "What is the capital of France?")) == [
        UserSaid(1, "What is the capital of France?"), Respond(1, "What is the capital of France?")]


def test_an_unsure_voice_waits_for_the_verdict_with_the_words() -> None:
    tl = semantic(EARLY)
    tl.speech(1.0)
    tl.silence(0.064)
    tl.event(VoiceJudged(1, 0.6))
    tl.silence(0.5)  # past the fixed 480 ms: the detector's answer is awaited
    assert tl.of(TurnCommitted) == []
    assert tl.event(TurnJudged(1, complete=True)) == [TurnCommitted(1, CommitRule.SEMANTIC)]


def test_the_voice_never_decides_alone_without_a_threshold() -> None:
    tl = semantic(SemanticPolicy(ask_silence_ms=64))
    tl.speech(1.0)
    tl.silence(0.16)
    assert tl.event(VoiceJudged(1, 0.99)) == []
    assert tl.event(TurnJudged(1, complete=False)) == []
    tl.silence(1.9)
    assert tl.of(TurnCommitted) == [TurnCommitted(1, CommitRule.TIMEOUT)]


def test_a_sure_voice_after_the_speculative_point_commits_at_once() -> None:
    tl = semantic(SemanticPolicy(voice_alone=0.75))  # asked at the speculative point
    tl.speech(1.0)
    tl.silence(0.16)
    assert [a.generation for a in tl.of(JudgeTurn)] == [1]
    assert tl.event(VoiceJudged(1, 0.8)) == [TurnCommitted(1, CommitRule.SEMANTIC)]


def test_speech_before_the_speculative_point_voids_the_early_question() -> None:
    tl = semantic(EARLY)
    tl.speech(1.0)  # "I would like to"
    tl.silence(0.096)  # asked at 64 ms
    tl.speech(0.5)  # "... order a pizza": no STT ran, nothing to cancel
    assert tl.of(Transcribe) == [] and tl.of(Cancel) == []
    assert tl.event(VoiceJudged(1, 0.95)) == []  # the void question's answer
    tl.silence(0.064)
    second = tl.of(JudgeTurn)[-1]
    assert second == JudgeTurn(1, 0.0, 1.664)  # asked again, about the whole turn
    out = tl.silence(0.096)
    assert TurnCommitted(1, CommitRule.SEMANTIC) not in out  # the void "sure" is forgotten
    assert tl.event(VoiceJudged(1, 0.9)) == [TurnCommitted(1, CommitRule.SEMANTIC)]


def test_an_early_failure_is_said_once_and_the_fixed_rule_decides() -> None:
    tl = semantic(EARLY)
    tl.speech(1.0)
    tl.silence(0.064)
    [error] = [a for a in tl.event(JudgeFailed(1, "the turn detector failed: boom"))
               if isinstance(a, ReportError)]
    assert "boom" in error.message
    tl.silence(0.928)  # 992 ms
    assert tl.of(TurnCommitted) == []
    assert tl.silence(0.032) == [TurnCommitted(1, CommitRule.TIMEOUT)]  # 1024 ms


def test_an_early_answer_for_another_generation_is_stale() -> None:
    tl = semantic(EARLY)
    tl.speech(1.0)
    tl.silence(0.064)
    assert tl.event(VoiceJudged(2, 0.99)) == []  # not the turn this pause would end
    assert tl.event(TurnJudged(0, complete=True)) == []
    tl.silence(0.096)
    assert tl.of(TurnCommitted) == []
