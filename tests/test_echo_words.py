"""A paused reply is cut only by the user's words, not by its own words heard again."""

from __future__ import annotations

from tests.test_turn_core import Timeline
from voxlive.turn.core import Cancel, PauseReply, Respond, ResumeReply, Transcribed, UserSaid
from voxlive.turn.echo_words import sounds_like_reply

STORY = ("Once upon a time, a dragon lived in a castle high above the valley. "
         "Every morning he flew over the forest to look for his friend.")


def test_the_replys_own_words_are_echo() -> None:
    assert sounds_like_reply("A dragon lived in a castle.", STORY)
    assert sounds_like_reply("every morning he flew over the forests", STORY)  # tiny.en
    assert sounds_like_reply("Castle.", STORY)


def test_the_users_words_are_not() -> None:
    assert not sounds_like_reply("Stop. What is the capital of France?", STORY)
    assert not sounds_like_reply("Wait, tell me about the dragon instead", STORY)
    # the reply's words, but not in its order: a question about what it just said
    assert not sounds_like_reply("What is the capital of France?",
                                 "The capital of France is Paris. It is lovely in spring.")
    assert not sounds_like_reply("", STORY)
    assert not sounds_like_reply("the dragon", "")  # no reply text to compare with


def test_an_echo_transcript_resumes_the_paused_reply_and_words_still_cut_it() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.speech(0.3)  # the echo guard missed the reply's own voice: a pause
    assert tl.of(PauseReply) == [PauseReply(first)]
    tl.silence(0.5)
    out = tl.event(Transcribed(tl.core.generation, "a dragon lived in a castle", echo=True))
    assert out[1] == ResumeReply(first)  # after UserSaid: the page still sees the words
    assert tl.of(Cancel) == []
    tl.speech(0.5)  # then the user really talks
    tl.silence(0.5)
    second = tl.core.generation
    out = tl.event(Transcribed(second, "stop please"))
    assert out == [UserSaid(second, "stop please"), Cancel(first, barge_in=True, keep_heard=True),
                   Respond(second, "stop please")]
