"""Timeline tests of the sans-I/O turn core: exact timestamps, no sleeps, no asyncio."""

from __future__ import annotations

from voxlive.config import TurnSettings
from voxlive.turn.core import (
    Cancel,
    ReplyAudioStarted,
    ReplyPlayed,
    ReportError,
    Respond,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    State,
    StateChanged,
    Transcribe,
    Transcribed,
    TurnCore,
    VadWindow,
)

W = 0.032  # one VAD window


class Timeline:
    """Feeds VAD windows at exact stream times and collects every action."""

    def __init__(self, **settings: object):
        self.core = TurnCore(TurnSettings(**settings), vad_threshold=0.5)
        self.t = 0.0
        self.actions: list[object] = []

    def audio(self, seconds: float, probability: float) -> list[object]:
        out: list[object] = []
        for _ in range(round(seconds / W)):
            self.t = round(self.t + W, 6)
            out += self.core.handle(VadWindow(self.t, probability, W))
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


def test_a_turn_is_committed_after_the_configured_silence() -> None:
    tl = Timeline(end_of_turn_silence_ms=480, min_speech_ms=96, pre_roll_ms=160)
    tl.silence(0.32)
    tl.speech(1.28)  # onset at 0.32, last voiced window ends at 1.60
    assert tl.of(SpeechStarted) == [SpeechStarted(0.32)]
    assert tl.core.state == State.USER_SPEAKING
    assert tl.silence(0.448) == []  # 14 windows: 448 ms < 480 ms, not yet
    out = tl.silence(0.032)
    assert SpeechStopped(1.6) in out
    [transcribe] = [a for a in out if isinstance(a, Transcribe)]
    assert transcribe.generation == 1
    assert transcribe.start == round(0.32 - 0.16, 6)
    assert transcribe.last_voiced == 1.6
    assert abs(transcribe.end - 1.7) < 1e-9
    assert tl.core.state == State.THINKING


def test_a_short_blip_does_not_start_a_turn() -> None:
    tl = Timeline(min_speech_ms=96)
    tl.speech(0.064)  # two windows: less than 96 ms
    tl.silence(1.0)
    assert tl.of(SpeechStarted) == []
    assert tl.core.state == State.LISTENING


def test_pauses_shorter_than_the_end_silence_keep_the_turn_open() -> None:
    tl = Timeline(end_of_turn_silence_ms=480)
    tl.speech(0.5)
    tl.silence(0.3)
    tl.speech(0.5)
    assert tl.of(Transcribe) == []
    tl.silence(0.48)
    assert len(tl.of(Transcribe)) == 1
    assert len(tl.of(SpeechStarted)) == 1


def test_probabilities_between_the_thresholds_keep_speech_going() -> None:
    tl = Timeline(end_of_turn_silence_ms=480)
    tl.speech(0.5)
    tl.audio(1.0, 0.4)  # below 0.5 but above 0.5 - hysteresis: still speech
    assert tl.of(Transcribe) == []
    tl.audio(0.48, 0.3)
    assert len(tl.of(Transcribe)) == 1


def test_full_turn_then_reply_then_back_to_listening() -> None:
    tl = Timeline()
    tl.speech(1.0)
    tl.silence(0.5)
    [transcribe] = tl.of(Transcribe)
    out = tl.event(Transcribed(transcribe.generation, " What is the capital of France? "))
    assert out == [Respond(1, "What is the capital of France?")]
    assert tl.event(ReplyAudioStarted(1)) == [StateChanged(State.SPEAKING)]
    assert tl.event(ReplyPlayed(1)) == [StateChanged(State.LISTENING)]


def test_no_words_means_back_to_listening_without_a_reply() -> None:
    tl = Timeline()
    tl.speech(0.3)
    tl.silence(0.5)
    out = tl.event(Transcribed(1, "   "))
    assert out == [StateChanged(State.LISTENING)]
    assert tl.of(Respond) == []


def test_a_reply_without_audio_still_ends_the_turn() -> None:
    tl = Timeline()
    tl.speech(0.5)
    tl.silence(0.5)
    tl.event(Transcribed(1, "hello"))
    assert tl.event(ReplyPlayed(1)) == [StateChanged(State.LISTENING)]


def test_talking_over_the_reply_cancels_it() -> None:
    tl = Timeline(barge_in_min_speech_ms=192)
    tl.speech(1.0)
    tl.silence(0.5)
    tl.event(Transcribed(1, "tell me a story"))
    tl.event(ReplyAudioStarted(1))
    assert tl.speech(0.16) == []  # 160 ms: not yet an interruption
    out = tl.speech(0.032)
    assert out[0] == Cancel(1, barge_in=True)
    assert SpeechStarted(round(tl.t - 0.192, 6)) in out
    assert tl.core.state == State.USER_SPEAKING
    assert tl.core.generation == 2


def test_barge_in_can_be_switched_off() -> None:
    tl = Timeline(barge_in=False)
    tl.speech(1.0)
    tl.silence(0.5)
    tl.event(Transcribed(1, "tell me a story"))
    tl.event(ReplyAudioStarted(1))
    tl.speech(2.0)
    assert tl.of(Cancel) == []
    assert tl.core.state == State.SPEAKING


def test_resuming_before_the_reply_is_heard_reopens_the_turn() -> None:
    tl = Timeline(pre_roll_ms=0)
    tl.speech(0.96)  # onset at 0.032
    tl.silence(0.48)
    tl.event(Transcribed(1, "what is"))  # the reply is being generated, nothing played
    tl.speech(0.128)
    assert Cancel(1, barge_in=False) in tl.actions
    tl.speech(0.5)
    tl.silence(0.48)
    second = tl.of(Transcribe)[-1]
    assert second.generation == 3
    assert second.start == 0.0  # the whole turn, from the first onset
    assert tl.event(Transcribed(1, "stale")) == []  # the old generation is gone


def test_stale_results_are_dropped() -> None:
    tl = Timeline()
    tl.speech(0.5)
    tl.silence(0.5)
    tl.event(Transcribed(1, "first"))
    tl.event(ReplyAudioStarted(1))
    tl.speech(0.3)  # barge-in: generation 2 begins
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
    assert tl.of(Transcribe)[-1].generation == 2  # the next turn works


def test_a_very_long_utterance_is_cut_and_answered() -> None:
    tl = Timeline(max_utterance_s=2.0, pre_roll_ms=0)
    tl.speech(2.016)
    [first] = tl.of(Transcribe)
    assert tl.core.state == State.THINKING
    tl.speech(0.5)  # still talking: the cut answer is dropped, a new turn goes on
    assert Cancel(first.generation, barge_in=False) in tl.actions
    tl.silence(0.5)
    second = tl.of(Transcribe)[-1]
    assert second.start >= first.end - 0.1  # no audio is lost or transcribed twice
    assert second.last_voiced == tl.of(SpeechStopped)[-1].t
