"""Timeline tests of the decisions the turn core hands the runtime as actions.

The session carries these out and derives none of them (voxlive/session.py): what the
history keeps (CommitHistory, Cancel.keep_heard), when a barge-in is timed
(Cancel.cut_by_speech), that synthesis waits while a reply is paused
(PauseReply.hold_synthesis), which transcripts the page sees (UserSaid, never for a stale
one) and which turns leave nothing behind (ForgetTurn). Same style as test_turn_core.py:
exact stream times, no sleeps, no asyncio.
"""

from __future__ import annotations

from tests.test_turn_core import Timeline
from voxlive.turn.core import (
    Cancel,
    ClientCancel,
    ClientTurn,
    CommitHistory,
    ForgetTurn,
    PauseReply,
    ReplyAudioStarted,
    ReplyPlayed,
    StageFailed,
    Transcribed,
    UserSaid,
)


def test_a_reply_played_to_its_end_commits_its_history_once() -> None:
    tl = Timeline()
    first = tl.answered()
    assert CommitHistory(first) in tl.event(ReplyPlayed(first))
    assert tl.event(ReplyPlayed(first)) == []  # a late second report commits nothing


def test_a_turn_without_words_commits_nothing_and_is_forgotten() -> None:
    tl = Timeline()
    tl.speech(0.5)
    tl.silence(0.5)
    out = tl.event(Transcribed(tl.core.generation, ""))
    assert ForgetTurn(tl.core.generation) in out
    assert not [a for a in out if isinstance(a, UserSaid)]
    assert tl.of(CommitHistory) == []


def test_a_dropped_speculative_reply_keeps_nothing_and_is_not_timed() -> None:
    tl = Timeline()
    tl.speech(1.0)
    tl.silence(0.2)  # speculative: the reply is made, not heard
    tl.event(Transcribed(1, "I think"))
    tl.speech(0.3)  # the user goes on
    assert tl.of(Cancel) == [Cancel(1, barge_in=False, cut_by_speech=False, keep_heard=False)]
    tl.silence(0.6)
    assert tl.event(Transcribed(1, "I think")) == []  # stale: not shown, not answered
    assert tl.of(UserSaid) == [UserSaid(1, "I think")]


def test_the_pause_holds_synthesis_and_the_cut_after_it_is_not_timed_again() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.speech(0.3)
    [pause] = tl.of(PauseReply)
    assert pause == PauseReply(first, hold_synthesis=True)
    tl.silence(0.5)
    out = tl.event(Transcribed(tl.core.generation, "stop right there"))
    [cancel] = [a for a in out if isinstance(a, Cancel)]
    assert cancel == Cancel(first, barge_in=True, cut_by_speech=False, keep_heard=True)


def test_a_client_cancel_while_paused_keeps_the_heard_words_but_is_not_timed() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.speech(0.3)  # paused
    out = tl.event(ClientCancel())
    assert Cancel(first, barge_in=True, cut_by_speech=False, keep_heard=True) in out


def test_a_client_turn_before_any_audio_drops_the_reply_without_history() -> None:
    tl = Timeline()
    tl.speech(1.0)
    tl.silence(0.6)
    tl.event(Transcribed(1, "hello"))  # committed, reply being made, nothing played
    out = tl.event(ClientTurn("never mind"))
    assert out[0] == Cancel(1, barge_in=False, cut_by_speech=False, keep_heard=False)
    assert tl.event(ReplyAudioStarted(tl.core.generation)) != []
    assert CommitHistory(tl.core.generation) in tl.event(ReplyPlayed(tl.core.generation))


def test_a_failure_after_the_reply_was_answered_keeps_no_history_for_it() -> None:
    tl = Timeline()
    tl.speech(1.0)
    tl.silence(0.6)
    tl.event(Transcribed(1, "hello"))
    out = tl.event(StageFailed(1, "llm", "down"))
    assert Cancel(1, barge_in=False, cut_by_speech=False, keep_heard=False) in out
    assert tl.event(ReplyPlayed(1)) == []  # nothing left to commit
