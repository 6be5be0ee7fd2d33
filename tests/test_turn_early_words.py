"""Timeline tests of STT asked for before the speculative point (voxlive/turn/early_words.py):
the words are asked for at 64 ms of silence, the reply starts at 160 ms on them, and speech
in between voids them. Exact stream times, no sleeps."""

from __future__ import annotations

from tests.test_turn_core import Timeline
from voxlive.turn.core import (
    ClientTurn,
    ForgetTurn,
    ReportError,
    Respond,
    SpeechStopped,
    StageFailed,
    State,
    Transcribe,
    Transcribed,
    TurnCommitted,
    UserSaid,
)


def early() -> Timeline:
    return Timeline(speculative_silence_ms=160, end_of_turn_silence_ms=480,
                    transcribe_silence_ms=64, pre_roll_ms=0)


def test_stt_starts_at_64_ms_and_the_reply_at_160_ms_on_its_words() -> None:
    tl = early()
    tl.speech(1.28)
    assert tl.silence(0.032) == []
    [asked] = tl.silence(0.032)  # 64 ms: STT, for the turn this pause would end
    assert asked == Transcribe(1, 0.0, 1.28 + 0.064, 1.28)
    assert tl.core.state == State.USER_SPEAKING and tl.core.generation == 0
    assert tl.event(Transcribed(1, "What time is it?")) == []  # kept: the user may go on
    out = tl.silence(0.096)  # 160 ms: the speculative point
    assert SpeechStopped(1.28) in out
    assert not [a for a in out if isinstance(a, Transcribe)]  # not asked twice
    assert out[-2:] == [UserSaid(1, "What time is it?"), Respond(1, "What time is it?")]
    assert tl.silence(0.32)[-1] == TurnCommitted(1)  # 480 ms: the fixed rule, as before


def test_words_that_come_after_the_speculative_point_start_the_reply_then() -> None:
    tl = early()
    tl.speech(1.28)
    tl.silence(0.16)
    assert len(tl.of(Transcribe)) == 1 and tl.of(Respond) == []
    assert tl.event(Transcribed(1, "Hello.")) == [UserSaid(1, "Hello."), Respond(1, "Hello.")]


def test_speech_before_the_speculative_point_voids_the_early_words() -> None:
    tl = early()
    tl.speech(1.0)
    tl.silence(0.096)  # asked at 64 ms
    assert ForgetTurn(1) in tl.speech(0.5)  # "... and then": the turn goes on; its work stops
    # the voided request's words come late: dropped, they are half the turn
    assert tl.event(Transcribed(1, "I would like")) == []
    tl.silence(0.064)  # asked again, for the same turn, with all of it
    second = tl.of(Transcribe)[-1]
    assert (second.generation, second.start, second.last_voiced) == (1, 0.0, 1.6)
    tl.silence(0.096)
    assert tl.of(Respond) == []  # the speculative point waits for the new words
    assert tl.event(Transcribed(1, "I would like a pizza."))[-1] == Respond(
        1, "I would like a pizza.")
    assert [a.text for a in tl.of(UserSaid)] == ["I would like a pizza."]


def test_an_early_failure_is_reported_at_the_speculative_point() -> None:
    tl = early()
    tl.speech(1.0)
    tl.silence(0.064)
    assert tl.event(StageFailed(1, "stt", "the server is down")) == []
    out = tl.silence(0.096)
    assert ReportError("stt", "the server is down") in out
    assert tl.core.state == State.LISTENING and tl.of(Respond) == []


def test_a_client_turn_makes_the_early_words_stale() -> None:
    tl = early()
    tl.speech(1.0)
    tl.silence(0.064)  # STT asked for the turn the pause would make generation 1
    out = tl.event(ClientTurn("Typed instead."))
    assert Respond(2, "Typed instead.") in out  # the client's turn has its own number
    assert tl.event(Transcribed(1, "spoken words")) == []  # stale
    assert tl.of(Respond) == [Respond(2, "Typed instead.")]


def test_without_an_earlier_silence_stt_starts_at_the_speculative_point() -> None:
    tl = Timeline(speculative_silence_ms=160, transcribe_silence_ms=None)
    tl.speech(1.0)
    assert tl.silence(0.128) == []
    assert [a.generation for a in tl.silence(0.032) if isinstance(a, Transcribe)] == [1]
