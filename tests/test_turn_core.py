"""Timeline tests of the sans-I/O turn core: exact timestamps, no sleeps, no asyncio."""

from __future__ import annotations

from voxlive.config import TurnSettings
from voxlive.turn.core import (
    Cancel,
    CommitHistory,
    ForgetTurn,
    PauseReply,
    ReplyAudioStarted,
    ReplyPlayed,
    ReportError,
    Respond,
    ResumeReply,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    State,
    StateChanged,
    Transcribe,
    Transcribed,
    TurnCommitted,
    TurnCore,
    UserSaid,
    VadWindow,
)

W = 0.032  # one VAD window


class Timeline:
    """Feeds VAD windows at exact stream times and collects every action."""

    def __init__(self, **settings: object):
        # STT at the speculative point unless a test asks for it sooner (early_words.py)
        settings = {"transcribe_silence_ms": None, **settings}
        self.core = TurnCore(TurnSettings(**settings), vad_threshold=0.5)
        self.t = 0.0
        self.actions: list[object] = []

    def audio(self, seconds: float, probability: float, echo: bool = False) -> list[object]:
        out: list[object] = []
        for _ in range(round(seconds / W)):
            self.t = round(self.t + W, 6)
            out += self.core.handle(VadWindow(self.t, probability, W, echo))
        self.actions += out
        return out

    def speech(self, seconds: float) -> list[object]:
        return self.audio(seconds, 0.9)

    def silence(self, seconds: float) -> list[object]:
        return self.audio(seconds, 0.02)

    def event(self, event: object) -> list[object]:
        out = self.core.handle(event)  # type: ignore[arg-type]
        self.actions += out
        return out

    def of(self, kind: type) -> list:
        return [a for a in self.actions if isinstance(a, kind)]

    def answered(self, text: str = "tell me a story") -> int:
        """A full user turn whose reply is now playing; returns its generation."""
        self.speech(1.0)
        self.silence(0.5)
        generation = self.core.generation
        self.event(Transcribed(generation, text))
        self.event(ReplyAudioStarted(generation))
        assert self.core.state == State.SPEAKING
        return generation


# --- endpointing ------------------------------------------------------------------------


def test_speculative_end_starts_stt_and_the_commit_lets_the_reply_play() -> None:
    tl = Timeline(speculative_silence_ms=160, end_of_turn_silence_ms=480, pre_roll_ms=160)
    tl.silence(0.32)
    tl.speech(1.28)  # onset at 0.32, last voiced window ends at 1.60
    assert tl.of(SpeechStarted) == [SpeechStarted(0.32)]
    assert tl.silence(0.128) == []  # 128 ms < 160 ms
    out = tl.silence(0.032)
    assert SpeechStopped(1.6) in out
    [transcribe] = tl.of(Transcribe)
    assert (transcribe.generation, transcribe.start, transcribe.last_voiced) == (1, 0.16, 1.6)
    assert abs(transcribe.end - 1.7) < 1e-9
    assert tl.core.state == State.THINKING and not tl.core.committed
    assert tl.event(Transcribed(1, "What is the capital of France?")) == [
        UserSaid(1, "What is the capital of France?"), Respond(1, "What is the capital of France?")
    ]  # the reply is generated now, before the turn is over
    assert tl.silence(0.256) == []  # 416 ms of silence: not yet
    assert tl.silence(0.064) == [TurnCommitted(1)]  # 480 ms: the turn is over
    assert tl.event(ReplyAudioStarted(1)) == [StateChanged(State.SPEAKING)]
    assert tl.event(ReplyPlayed(1)) == [CommitHistory(1), StateChanged(State.LISTENING)]


def test_speculation_off_transcribes_only_at_the_commit() -> None:
    tl = Timeline(speculative_silence_ms=480, end_of_turn_silence_ms=480)
    tl.speech(1.0)
    tl.silence(0.448)
    assert tl.of(Transcribe) == []
    out = tl.silence(0.032)
    assert [type(a) for a in out if not isinstance(a, StateChanged)] == [
        SpeechStopped, Transcribe, TurnCommitted]


def test_resuming_after_a_speculative_end_reopens_the_turn_unheard() -> None:
    tl = Timeline(pre_roll_ms=0)
    tl.speech(0.96)  # onset at 0.0
    tl.silence(0.256)  # speculative end (160 ms), no commit (480 ms)
    tl.event(Transcribed(1, "what is"))
    assert tl.of(Respond) == [Respond(1, "what is")]
    tl.speech(0.128)
    assert Cancel(1, barge_in=False) in tl.actions
    assert tl.of(TurnCommitted) == []
    assert tl.core.state == State.USER_SPEAKING
    tl.speech(0.5)
    tl.silence(0.5)
    second = tl.of(Transcribe)[-1]
    assert second.generation > 1
    assert second.start == 0.0  # the whole turn, from the first onset
    assert tl.event(Transcribed(1, "stale")) == []  # the old generation is gone
    assert tl.of(TurnCommitted) == [TurnCommitted(second.generation)]


def test_resuming_after_the_commit_but_before_the_reply_is_heard_also_reopens() -> None:
    tl = Timeline()
    tl.speech(1.0)
    tl.silence(0.5)
    assert tl.of(TurnCommitted) == [TurnCommitted(1)]
    tl.event(Transcribed(1, "what is"))
    tl.speech(0.128)  # the reply was slow: the user adds to the question
    assert Cancel(1, barge_in=False) in tl.actions
    tl.speech(0.3)
    tl.silence(0.5)
    assert tl.of(Transcribe)[-1].start == tl.of(Transcribe)[0].start


def test_a_short_blip_does_not_start_a_turn() -> None:
    tl = Timeline(min_speech_ms=96)
    tl.speech(0.064)  # two windows: less than 96 ms
    tl.silence(1.0)
    assert tl.of(SpeechStarted) == []
    assert tl.core.state == State.LISTENING


def test_pauses_shorter_than_the_speculative_silence_keep_the_turn_going() -> None:
    tl = Timeline(speculative_silence_ms=160)
    tl.speech(0.5)
    tl.silence(0.128)
    tl.speech(0.5)
    assert tl.of(Transcribe) == []
    tl.silence(0.5)
    assert len(tl.of(Transcribe)) == 1
    assert len(tl.of(SpeechStarted)) == 1


def test_probabilities_between_the_thresholds_keep_speech_going() -> None:
    tl = Timeline()
    tl.speech(0.5)
    tl.audio(1.0, 0.4)  # below 0.5 but above 0.5 - hysteresis: still speech
    assert tl.of(Transcribe) == []
    tl.audio(0.48, 0.3)
    assert len(tl.of(Transcribe)) == 1


def test_no_words_means_back_to_listening_without_a_reply() -> None:
    tl = Timeline()
    tl.speech(0.3)
    tl.silence(0.5)
    out = tl.event(Transcribed(1, "   "))
    assert out == [ForgetTurn(1), StateChanged(State.LISTENING)]  # nothing shown or kept
    assert tl.of(Respond) == []


def test_a_reply_without_audio_still_ends_the_turn() -> None:
    tl = Timeline()
    tl.speech(0.5)
    tl.silence(0.5)
    tl.event(Transcribed(1, "hello"))
    assert tl.event(ReplyPlayed(1)) == [CommitHistory(1), StateChanged(State.LISTENING)]


def test_a_very_long_utterance_is_cut_answered_and_then_listens() -> None:
    tl = Timeline(max_utterance_s=2.0, pre_roll_ms=0, end_of_turn_silence_ms=480)
    tl.speech(2.016)
    [first] = tl.of(Transcribe)
    assert tl.of(TurnCommitted) == [TurnCommitted(first.generation, "max_utterance")]
    assert tl.core.state == State.THINKING
    tl.speech(0.5)  # still talking: the cut turn is answered all the same
    assert tl.of(Cancel) == []
    assert tl.event(Transcribed(first.generation, "a long story")) == [
        UserSaid(first.generation, "a long story"), Respond(first.generation, "a long story")]
    tl.speech(0.3)
    assert tl.event(ReplyAudioStarted(first.generation)) == [StateChanged(State.SPEAKING)]
    tl.speech(1.0)  # the monologue goes on over the answer: no pause, no new turn
    assert tl.of(PauseReply) == [] and tl.of(Cancel) == [] and len(tl.of(Transcribe)) == 1
    tl.silence(0.5)  # a pause: from here on it listens again
    assert tl.event(ReplyPlayed(first.generation)) == [
        CommitHistory(first.generation), StateChanged(State.LISTENING)]
    tl.speech(0.3)
    assert tl.core.state == State.USER_SPEAKING
    tl.silence(0.5)
    assert tl.of(Transcribe)[-1].generation == first.generation + 1


# --- barge-in -----------------------------------------------------------------------------


def test_talking_over_the_reply_pauses_it_then_words_cancel_it() -> None:
    tl = Timeline(barge_in_min_speech_ms=160)
    first = tl.answered()
    assert tl.speech(0.128) == []  # 128 ms: not yet an interruption
    out = tl.speech(0.032)
    assert out[0] == PauseReply(first)  # silent from the next frame
    assert SpeechStarted(round(tl.t - 0.16, 6)) in out
    assert tl.core.state == State.USER_SPEAKING
    tl.speech(0.5)
    tl.silence(0.5)
    second = tl.core.generation
    out = tl.event(Transcribed(second, "stop, what time is it"))
    assert out == [UserSaid(second, "stop, what time is it"),
                   # paused first, so the barge-in was timed at the pause; the history
                   # keeps what was heard of the first reply
                   Cancel(first, barge_in=True, cut_by_speech=False, keep_heard=True),
                   Respond(second, "stop, what time is it")]
    assert tl.event(ReplyPlayed(first)) == []  # the cut reply's late events are stale


def test_a_cough_or_backchannel_resumes_the_reply() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.speech(0.3)  # "mm-hm"
    assert tl.of(PauseReply) == [PauseReply(first)]
    tl.silence(0.5)
    second = tl.core.generation
    out = tl.event(Transcribed(second, "Mm-hmm."))
    assert out == [UserSaid(second, "Mm-hmm."), ResumeReply(first), ForgetTurn(second),
                   StateChanged(State.SPEAKING)]
    assert tl.of(Cancel) == []
    assert tl.event(ReplyPlayed(first)) == [CommitHistory(first), StateChanged(State.LISTENING)]
    tl.speech(0.3)  # a noise with no words at all also resumes
    tl.silence(0.5)
    # (the reply already ended here, so this one is an ordinary empty turn)
    assert tl.event(Transcribed(tl.core.generation, "")) == [
        ForgetTurn(tl.core.generation), StateChanged(State.LISTENING)]


def test_noise_without_words_during_the_reply_resumes_it() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.speech(0.2)  # a knock
    tl.silence(0.5)
    assert tl.event(Transcribed(tl.core.generation, "")) == [
        ResumeReply(first), ForgetTurn(tl.core.generation), StateChanged(State.SPEAKING)]


def test_min_words_zero_cancels_on_speech_alone() -> None:
    tl = Timeline(barge_in_min_words=0, barge_in_min_speech_ms=160)
    first = tl.answered()
    out = tl.speech(0.16)
    # cut while it played: timed from here; the history keeps what was heard
    assert out[0] == Cancel(first, barge_in=True, cut_by_speech=True, keep_heard=True)
    assert tl.of(PauseReply) == []


def test_min_words_two_needs_two_real_words() -> None:
    tl = Timeline(barge_in_min_words=2)
    first = tl.answered()
    tl.speech(0.3)
    tl.silence(0.5)
    out = tl.event(Transcribed(tl.core.generation, "yeah okay wait"))
    assert out[1] == ResumeReply(first)  # one real word ("wait") is not enough


def test_echo_does_not_interrupt_but_speech_over_it_does() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.audio(2.0, 0.95, echo=True)  # the assistant's own voice, loud, for two seconds
    assert tl.of(PauseReply) == [] and tl.core.state == State.SPEAKING
    tl.speech(0.2)
    assert tl.of(PauseReply) == [PauseReply(first)]


def test_echo_after_the_reply_ends_starts_no_turn() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.event(ReplyPlayed(first))
    tl.audio(0.3, 0.9, echo=True)  # the echo's tail
    assert tl.core.state == State.LISTENING
    assert len(tl.of(SpeechStarted)) == 1


def test_half_duplex_ignores_speech_during_the_reply_and_its_tail() -> None:
    tl = Timeline(barge_in=False, half_duplex_tail_ms=300)
    first = tl.answered()
    tl.speech(2.0)
    assert tl.of(Cancel) == [] and tl.of(PauseReply) == []
    assert tl.core.state == State.SPEAKING
    tl.event(ReplyPlayed(first))
    tl.speech(0.3)  # echo tail after the reply: ignored
    assert tl.core.state == State.LISTENING
    tl.silence(0.1)
    tl.speech(0.2)  # the user, after the tail
    assert tl.core.state == State.USER_SPEAKING


# --- failures and stale results -----------------------------------------------------------


def test_stale_results_are_dropped() -> None:
    tl = Timeline()
    tl.speech(0.5)
    tl.silence(0.5)
    tl.event(Transcribed(1, "first"))
    tl.speech(0.3)  # reopened: generation 1 is dropped
    assert tl.event(ReplyAudioStarted(1)) == []
    assert tl.event(ReplyPlayed(1)) == []
    assert tl.event(Transcribed(1, "late")) == []
    assert tl.event(StageFailed(1, "tts", "boom")) == []
    assert tl.core.state == State.USER_SPEAKING


def test_a_failing_stage_reports_and_returns_to_listening() -> None:
    tl = Timeline()
    tl.speech(0.5)
    tl.silence(0.5)
    out = tl.event(StageFailed(1, "stt", "model crashed"))
    assert ReportError("stt", "model crashed") in out
    assert Cancel(1, barge_in=False) in out
    assert tl.core.state == State.LISTENING
    tl.speech(0.5)
    tl.silence(0.5)
    assert tl.of(Transcribe)[-1].generation > 1  # the next turn works


def test_a_failure_while_a_reply_is_paused_cancels_both() -> None:
    tl = Timeline()
    first = tl.answered()
    tl.speech(0.3)
    tl.silence(0.5)
    out = tl.event(StageFailed(tl.core.generation, "stt", "crashed"))
    assert Cancel(first, barge_in=True, keep_heard=True) in out
    assert Cancel(first + 1, barge_in=False) in out  # the turn that paused it: no history
    assert tl.core.state == State.LISTENING and tl.core.speaking is None


def test_echo_the_guard_misses_now_and_then_does_not_add_up_to_a_barge_in() -> None:
    tl = Timeline(barge_in_min_speech_ms=128)
    tl.answered()
    for _ in range(30):  # 6 s of echo, one window in five slipping past the guard
        tl.audio(0.128, 0.95, echo=True)
        tl.audio(0.032, 0.95, echo=False)
    assert tl.of(PauseReply) == [] and tl.core.state == State.SPEAKING


def test_words_whisper_was_unsure_of_do_not_confirm_an_interruption() -> None:
    tl = Timeline(barge_in_min_confidence=0.45)
    first = tl.answered()
    tl.speech(0.4)  # a hum that the recogniser turned into "MMA cam."
    tl.silence(0.5)
    out = tl.event(Transcribed(tl.core.generation, "MMA cam.", confidence=0.38))
    assert out[1] == ResumeReply(first)
    tl.speech(0.4)  # then a clear "Stop."
    tl.silence(0.5)
    out = tl.event(Transcribed(tl.core.generation, "Stop.", confidence=0.69))
    assert out[1] == Cancel(first, barge_in=True, keep_heard=True)


# --- words the STT was unsure of ----------------------------------------------------------


def unsure_turn(tl: Timeline, text: str, confidence: float) -> list[object]:
    tl.speech(1.0)
    tl.silence(0.2)
    return tl.event(Transcribed(tl.core.generation, text, confidence))


def test_words_heard_unsurely_ask_the_user_again() -> None:
    tl = Timeline()  # ask_again_below 0.45 by default
    out = unsure_turn(tl, "We feel it's time to market.", 0.34)
    assert Respond(1, "We feel it's time to market.", unclear=True) in out


def test_sure_words_and_unsure_backchannels_are_answered() -> None:
    tl = Timeline()
    assert Respond(1, "Who wrote Romeo and Juliet?") in unsure_turn(
        tl, "Who wrote Romeo and Juliet?", 0.47)  # tiny.en's least sure right answer
    tl = Timeline()  # "Yes." is a word the user may well say: one word is not asked again
    assert Respond(1, "Yes.") in unsure_turn(tl, "Yes.", 0.2)
    tl = Timeline(ask_again_below=0.0)  # off: everything is answered
    assert Respond(1, "We feel it's time.") in unsure_turn(tl, "We feel it's time.", 0.34)
