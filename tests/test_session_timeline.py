"""Timeline tests of the session's barge-in glue, on scripted fakes (tests/fakes.py).

The turn core has its own timeline tests (test_turn_core.py); these check that the
session carries its actions out: a reply is made, held until the turn is committed,
played, paused under the user's voice, resumed after an "mm-hm" or its own echo, cut by
words, and the history holds only what was heard. No WebRTC, no models, no sleeps: input
time is the audio fed, output time the frames pulled (tests/fakes_session.py).
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import pytest

from tests.fakes import GATE, LOUD
from tests.fakes_session import SessionTimeline
from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import BackendError, Transcript
from voxlive.config import VoxliveConfig
from voxlive.turn.bookkeeping import CUT_MARK

STORY = ["Once upon a time there was a dragon. ", "It lived in a castle by the sea."]
STORY_TEXT = "Once upon a time there was a dragon. It lived in a castle by the sea."


@pytest.fixture
async def timelines() -> AsyncIterator[list[SessionTimeline]]:
    made: list[SessionTimeline] = []
    yield made
    for timeline in made:
        await timeline.close()


New = Callable[..., SessionTimeline]
"""new(stt script, llm scripts, **turn settings): a session on the fakes, closed after."""


@pytest.fixture
def new(config: VoxliveConfig, timelines: list[SessionTimeline]) -> New:
    def make(stt: list[Any], llm: list[list[Any]], **turn: Any) -> SessionTimeline:
        timeline = SessionTimeline(config, stt, llm, **turn)
        timelines.append(timeline)
        return timeline
    return make


async def test_a_turn_is_answered_played_and_kept_in_the_history(new: New) -> None:
    tl = new(["Tell me a story."], [STORY])
    await tl.speech(1.0)
    await tl.silence(0.6)  # past the speculative point (160 ms) and the commit (480 ms)
    await tl.reply_made(1)
    assert tl.of("turn_committed") == [{"type": "turn_committed", "turn": 1, "rule": "timeout"}]
    assert tl.of("user_transcript")[0]["text"] == "Tell me a story."
    tl.play_until("reply_played")
    assert tl.kinds().index("turn_latency") < tl.kinds().index("reply_played")
    assert [e["state"] for e in tl.of("state")] == [
        "user_speaking", "thinking", "speaking", "listening"]
    assert tl.session.conversation.turns == [
        {"role": "user", "content": "Tell me a story."},
        {"role": "assistant", "content": STORY_TEXT}]
    assert tl.session.replies == {}  # disposed once played
    assert [text for text, _ in tl.tts.said] == [s.strip() for s in STORY]


async def test_a_speculative_reply_is_held_until_the_commit(new: New) -> None:
    tl = new(["Hello."], [["Hi there."]])
    await tl.speech(1.0)
    await tl.silence(0.224)  # past 160 ms: STT and the LLM start; the turn is not over
    await tl.reply_made(1)
    assert not any(tl.play(5))  # made, but the user may go on: silence
    assert tl.of("turn_committed") == []
    await tl.silence(0.3)  # 524 ms: committed
    assert tl.of("turn_committed") and any(tl.play(5))


@pytest.mark.parametrize("said", ["Mm-hmm.", "there was a dragon"])  # backchannel, echo
async def test_speech_over_the_reply_pauses_it_and_no_words_resume_it(new: New, said: str) -> None:
    tl = new(["Tell me a story.", said], [STORY])
    heard_by_transport: list[str] = []  # a transport's own buffer (transports/contract.py)
    tl.session.output.buffers.append(SimpleNamespace(
        paused=lambda: heard_by_transport.append("paused"),
        resumed=lambda: heard_by_transport.append("resumed")))
    await tl.speech(1.0)
    await tl.silence(0.6)
    await tl.reply_made(1)
    assert all(tl.play(10))  # 200 ms of the story
    await tl.speech(0.128)  # the user makes a sound: paused at once
    assert not any(tl.play(3))
    barge_in = await tl.until("barge_in")  # the frame clock timed the silence
    assert barge_in["turn"] == 1 and barge_in["frames_after_decision"] == 0
    assert tl.session.paused_reply() is tl.session.replies[1]
    await tl.silence(0.6)
    await tl.until("resumed")
    assert tl.session.paused_reply() is None
    assert set(tl.session.replies) == {1}  # the "turn" that paused it is forgotten
    assert all(tl.play(5))  # plays on from where it paused
    assert heard_by_transport == ["paused", "resumed"]
    tl.play_until("reply_played")
    assert tl.of("interrupted") == [] and tl.of("reply_cancelled") == []
    assert tl.session.conversation.turns[-1] == {"role": "assistant", "content": STORY_TEXT}


async def test_words_over_the_reply_cut_it_and_the_history_keeps_what_was_heard(new: New) -> None:
    tl = new(["Tell me a story.", "Stop, what time is it?"], [STORY, ["It is noon."]])
    await tl.speech(1.0)
    await tl.silence(0.6)
    await tl.reply_made(1)
    tl.play(20)  # 0.4 s: four words of the first sentence (0.1 s a word)
    await tl.speech(0.5)
    await tl.silence(0.6)
    interrupted = await tl.until("interrupted")
    heard = interrupted["heard_text"]
    assert heard and STORY_TEXT.startswith(heard) and "castle" not in heard
    cancelled = tl.of("reply_cancelled")
    assert cancelled == [{"type": "reply_cancelled", "turn": 1, "heard_text": heard}]
    await tl.reply_made(2)
    # The second prompt holds the story as far as it was heard, marked as cut.
    prompt = tl.llm.prompts[1]
    assert {"role": "assistant", "content": f"{heard} {CUT_MARK}"} in prompt
    assert prompt[-1] == {"role": "user", "content": "Stop, what time is it?"}
    assert not any("castle" in str(m["content"]) for m in prompt)
    tl.play_until("reply_played")
    assert tl.session.conversation.turns[-1] == {"role": "assistant", "content": "It is noon."}


async def test_synthesis_waits_while_the_reply_is_paused(new: New) -> None:
    first = "One two three four five six seven eight. "
    tl = new(["Go on.", "Mm-hmm."], [[first, GATE, "Nine ten."]])
    await tl.speech(1.0)
    await tl.silence(0.6)
    await tl.until(lambda e: e["type"] == "assistant_text" and not e["final"])
    assert all(tl.play(10))
    await tl.speech(0.2)  # paused
    tl.llm.open_gate()  # the LLM has the next sentence while the reply is paused
    await tl.silence(0.6)
    await tl.until("resumed")
    await tl.reply_made(1)
    assert tl.tts.said == [(first.strip(), False), ("Nine ten.", False)]  # none while paused


async def test_a_speculative_reply_is_dropped_when_the_user_goes_on(new: New) -> None:
    maybe = ["Maybe we should think about it first. ", GATE, "Or not."]
    tl = new(["I think", "I think we should go."], [maybe, ["Yes."]])
    await tl.speech(1.0)
    await tl.silence(0.224)  # speculative: the reply starts, unheard
    await tl.until(lambda e: e["type"] == "assistant_text" and e["turn"] == 1)
    await tl.speech(0.5)  # the user was not done: the turn reopens
    assert tl.of("reply_cancelled") == [{"type": "reply_cancelled", "turn": 1, "heard_text": ""}]
    assert tl.llm.closed[0]  # its LLM stream was closed, not read to the end
    assert 1 not in tl.session.replies
    await tl.silence(0.6)
    await tl.reply_made(tl.session.core.generation)  # a new generation: 1's are stale
    tl.play_until("reply_played")
    assert tl.of("interrupted") == []
    assert tl.session.conversation.turns == [  # the dropped reply left nothing
        {"role": "user", "content": "I think we should go."},
        {"role": "assistant", "content": "Yes."}]
    assert "Or not." not in [text for text, _ in tl.tts.said]
    assert tl.stt.heard[1] > tl.stt.heard[0]  # the reopened turn is heard from its start


async def test_a_stale_transcript_is_not_shown_or_answered(new: New) -> None:
    tl = new(["I think", "I think we should go."], [["Yes."]])
    tl.stt.gate.clear()  # the first transcription is slow
    await tl.speech(1.0)
    await tl.silence(0.224)
    await tl.speech(0.5)  # the turn reopens before its transcript comes
    tl.stt.gate.set()
    await tl.transcribed(1)  # the stale one is in (and dropped) before the next is asked
    await tl.silence(0.6)
    await tl.reply_made(tl.session.core.generation)
    assert [e["text"] for e in tl.of("user_transcript")] == ["I think we should go."]
    assert len(tl.llm.prompts) == 1


async def test_speech_alone_cuts_the_reply_when_no_words_are_needed(new: New) -> None:
    tl = new(["Tell me a story."], [STORY], barge_in_min_words=0)
    await tl.speech(1.0)
    await tl.silence(0.6)
    await tl.reply_made(1)
    tl.play(20)
    await tl.speech(0.128)
    assert not any(tl.play(2))
    assert tl.of("interrupted")[0]["heard_text"]  # kept at once: no transcript needed
    barge_in = await tl.until("barge_in")  # timed from the cut
    assert barge_in["turn"] == 1
    assert tl.of("resumed") == [] and tl.session.paused_reply() is None


async def test_a_client_turn_cuts_the_playing_reply_and_is_answered(new: New) -> None:
    tl = new([], [STORY, ["Bonjour."]])
    first = tl.session.client_turn("Tell me a story.")
    await tl.reply_made(first)
    tl.play(20)
    second = tl.session.client_turn("And now in French.")
    assert tl.of("interrupted")[0]["turn"] == first
    await tl.reply_made(second)
    tl.play_until("reply_played")
    turns = tl.session.conversation.turns
    assert turns[1]["content"].endswith(CUT_MARK)
    assert turns[2:] == [{"role": "user", "content": "And now in French."},
                         {"role": "assistant", "content": "Bonjour."}]


async def test_a_failing_stage_is_reported_and_the_call_listens_again(new: New) -> None:
    tl = new([BackendError("stt", "the server is down")], [])
    await tl.speech(1.0)
    await tl.silence(0.6)
    error = await tl.until("error")
    assert error == {"type": "error", "message": "the server is down", "stage": "stt"}
    assert tl.of("state")[-1]["state"] == "listening"
    assert tl.session.replies == {} and tl.llm.prompts == []


async def test_a_turn_reopened_within_one_burst_leaves_no_work_behind(new: New) -> None:
    tl = new(["I think we should go."], [["Yes."]])
    await tl.speech(1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the speculative end and the user going on, in one VAD run: the transcription
        # is cancelled before it ever ran
        await tl.burst((0.224, 0.0), (0.3, LOUD))
        assert tl.of("reply_cancelled")[0]["turn"] == 1
        await tl.silence(0.6)
        await tl.reply_made(tl.session.core.generation)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert len(tl.stt.heard) == 1  # the cancelled one never ran: one transcription


async def test_a_listening_call_keeps_seconds_of_input_and_a_long_turn_all_of_it(
        new: New) -> None:
    tl = new(["A long question.", "Another one."], [["Yes."], ["No."]])
    ring = tl.session.input.audio
    await tl.silence(20.0)
    assert ring.nbytes <= 3 * MODEL_RATE * 2  # 2 s and the pre-roll, in half-second blocks
    await tl.speech(12.0)  # a long turn: its start must stay
    await tl.silence(0.6)
    await tl.reply_made(1)
    assert tl.stt.heard[-1] >= 12.0  # the whole turn was transcribed
    tl.play_until("reply_played")
    await tl.silence(10.0)
    assert ring.nbytes <= 3 * MODEL_RATE * 2  # freed once the turn is over


async def test_a_realtime_client_s_uncommitted_input_is_kept(new: New) -> None:
    tl = new([], [])
    tl.session.keep_audio_from = 1.0  # the client's buffer starts here, not yet committed
    await tl.silence(12.0)
    assert len(tl.session.input.audio.slice(1.0, 12.0)) == 11 * MODEL_RATE


async def test_words_asked_for_early_are_dropped_when_the_user_goes_on(new: New) -> None:
    tl = new(["I would like", "I would like a pizza."], [["Coming up."]])
    tl.stt.gate.clear()
    await tl.speech(1.0)
    await tl.silence(0.096)  # 64 ms: STT is asked early (the request waits at the gate)

    async def stt_started() -> None:
        while not tl.stt.heard:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(stt_started(), 20)  # its worker thread has the audio
    await tl.speech(0.5)  # the user goes on: that request is void, its work stopped
    tl.stt.gate.set()
    await tl.transcribed(1)
    await tl.silence(0.6)
    reply = await tl.reply_made(tl.session.core.generation)
    assert reply["text"] == "Coming up."
    assert [e["text"] for e in tl.of("user_transcript")] == ["I would like a pizza."]
    assert len(tl.llm.prompts) == 1 and "pizza" in str(tl.llm.prompts[0])
    assert tl.stt.heard[1] > tl.stt.heard[0] + 0.4  # the second request heard it all


async def test_whisper_video_outro_is_no_words_and_not_answered(new: New) -> None:
    # What tiny.en wrote for a French question it could not make out.
    tl = new(["Thank you for watching, we will see you in the next video.", "Thank you."],
             [["Goodbye."]])
    await tl.speech(1.0)
    await tl.silence(0.6)
    await tl.transcribed(1)
    thinking = next(i for i, e in enumerate(tl.events)
                    if e["type"] == "state" and e["state"] == "thinking")
    await tl.until(lambda e: e["type"] == "state" and e["state"] == "listening", thinking)
    assert tl.of("user_transcript") == [] and tl.llm.prompts == []
    await tl.speech(1.0)  # "Thank you." is words: answered
    await tl.silence(0.6)
    await tl.reply_made(tl.session.core.generation)
    assert [e["text"] for e in tl.of("user_transcript")] == ["Thank you."]


async def test_words_heard_unsurely_are_asked_again_not_answered(new: New) -> None:
    # What tiny.en wrote, at 0.34, for a German question neither Whisper made out.
    ask = "Sorry, I didn't catch that. Could you say it again?"
    tl = new([Transcript("We feel it's time to market.", 0.34), "What is a week?"],
             [["Seven days."]])
    await tl.speech(1.0)
    await tl.silence(0.6)
    await tl.reply_made(1)
    tl.play_until("reply_played")
    assert tl.llm.prompts == []  # no answer to words it could not trust
    assert [text for text, _ in tl.tts.said] == [ask]
    assert tl.session.conversation.turns == [
        {"role": "user", "content": "We feel it's time to market."},
        {"role": "assistant", "content": ask}]
    await tl.speech(1.0)  # said again, heard surely: answered
    await tl.silence(0.6)
    await tl.reply_made(2)
    assert len(tl.llm.prompts) == 1 and tl.tts.said[-1][0] == "Seven days."


async def test_a_call_heard_in_french_is_heard_in_french_again(new: New) -> None:
    """The STT is told the language the caller was last heard in (call_language.py), so
    that a short answer ("Oui.") is heard in it; and one word does not change it."""
    tl = new([Transcript("Quelle est la capitale de l'Italie ?", 0.9, language="fr"),
              Transcript("Okay.", 0.9), Transcript("Thank you very much.", 0.9)],
             [["Rome."], ["Bien."], ["You're welcome."]])
    for turn in (1, 2, 3):
        await tl.speech(1.0)
        await tl.silence(0.6)
        await tl.reply_made(turn)
        tl.play_until("reply_played")
    assert tl.stt.told == [None, "fr", "fr"]
    assert tl.session.language.language is None  # English again, from two words
    # The page is told which turn was heard in another language than the profile's.
    assert [e.get("language") for e in tl.of("user_transcript")] == ["fr", None, None]
    assert "language" not in tl.of("user_transcript")[1]
