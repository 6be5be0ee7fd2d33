"""The turn-taking core: who speaks now, when the user's turn ends, when a reply is cut.

Sans-I/O, like the protocol cores of h11 and websockets: `TurnCore.handle(event)`
takes one timestamped event and returns the actions the runtime must carry out.
No asyncio, no clock, no threads: every timeline can be replayed exactly in a test.

Time `t` is seconds of input audio since the call started (the VAD window's end),
so decisions depend on what was heard, not on how busy the machine was.

Every reply has a generation number. Starting a new user turn or cutting a reply
moves to a new generation; events that carry an older one are stale and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voxlive.config import TurnSettings


class State(StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"


# --- events in --------------------------------------------------------------------------


@dataclass(frozen=True)
class VadWindow:
    """One VAD decision; `t` is the window's end, `duration` its length, in seconds."""

    t: float
    probability: float
    duration: float = 0.032


@dataclass(frozen=True)
class Transcribed:
    generation: int
    text: str


@dataclass(frozen=True)
class ReplyAudioStarted:
    generation: int


@dataclass(frozen=True)
class ReplyPlayed:
    """The reply's last audio frame went out."""

    generation: int


@dataclass(frozen=True)
class StageFailed:
    generation: int
    stage: str
    message: str


Event = VadWindow | Transcribed | ReplyAudioStarted | ReplyPlayed | StageFailed


# --- actions out ------------------------------------------------------------------------


@dataclass(frozen=True)
class StateChanged:
    state: State


@dataclass(frozen=True)
class SpeechStarted:
    t: float


@dataclass(frozen=True)
class SpeechStopped:
    t: float


@dataclass(frozen=True)
class Transcribe:
    """Transcribe input audio from `start` to `end`; `last_voiced` marks the user's last word."""

    generation: int
    start: float
    end: float
    last_voiced: float


@dataclass(frozen=True)
class Respond:
    generation: int
    user_text: str


@dataclass(frozen=True)
class Cancel:
    """Drop generation N: close its LLM stream, stop its TTS, silence the output now."""

    generation: int
    barge_in: bool


@dataclass(frozen=True)
class ReportError:
    stage: str
    message: str


Action = StateChanged | SpeechStarted | SpeechStopped | Transcribe | Respond | Cancel | ReportError

HYSTERESIS = 0.15
"""A window counts as silence only below threshold - HYSTERESIS, so speech near the
threshold does not flicker between the two."""
TAIL_S = 0.1
"""Audio kept after the last voiced window: word endings are quiet."""


class TurnCore:
    def __init__(self, settings: TurnSettings, vad_threshold: float = 0.5):
        self.settings = settings
        self.threshold = vad_threshold
        self.state = State.LISTENING
        self.generation = 0
        self._voiced = False
        self._voiced_run = 0.0  # voiced seconds since the last long silence
        self._silence_run = 0.0
        self._onset: float | None = None  # first voiced window of the current user speech
        self._turn_onset: float | None = None  # start of the user's turn (kept on reopen)
        self._last_voiced = 0.0

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, VadWindow):
            return self._on_vad(event)
        if event.generation != self.generation:
            return []  # stale: a reply that was already cancelled or superseded
        if isinstance(event, Transcribed):
            return self._on_transcribed(event)
        if isinstance(event, ReplyAudioStarted):
            return self._set_state(State.SPEAKING) if self.state == State.THINKING else []
        if isinstance(event, ReplyPlayed):
            # From THINKING too: a reply with no words has no audio to start.
            if self.state in (State.THINKING, State.SPEAKING):
                return self._set_state(State.LISTENING)
            return []
        if isinstance(event, StageFailed):
            actions: list[Action] = [ReportError(event.stage, event.message)]
            if self.state in (State.THINKING, State.SPEAKING):
                actions.append(Cancel(self.generation, barge_in=False))
                actions += self._set_state(State.LISTENING)
            return actions
        raise TypeError(f"unknown event {event!r}")

    # --- voice activity -------------------------------------------------------------

    def _on_vad(self, window: VadWindow) -> list[Action]:
        start = round(window.t - window.duration, 6)
        if window.probability >= self.threshold:
            self._voiced = True
        elif window.probability < self.threshold - HYSTERESIS:
            self._voiced = False

        if self._voiced:
            if self._voiced_run == 0.0:
                self._onset = start
            self._voiced_run += window.duration
            self._silence_run = 0.0
            self._last_voiced = window.t
        else:
            self._silence_run += window.duration
            if self._silence_run >= self.settings.end_of_turn_silence_ms / 1000:
                self._voiced_run = 0.0  # blips separated by a long silence do not add up

        if self.state == State.LISTENING:
            return self._maybe_user_starts(self.settings.min_speech_ms, reopen=False)
        if self.state == State.USER_SPEAKING:
            return self._maybe_user_stops(window.t)
        if self.state == State.THINKING:
            # Talking again before the reply is heard: the turn was not over. Cancel the
            # reply unheard and let the turn go on, keeping its original start.
            return self._maybe_user_starts(self.settings.min_speech_ms, reopen=True)
        if self.state == State.SPEAKING and self.settings.barge_in:
            return self._maybe_user_starts(self.settings.barge_in_min_speech_ms, reopen=False)
        return []

    def _maybe_user_starts(self, min_speech_ms: int, reopen: bool) -> list[Action]:
        if not self._voiced or self._voiced_run < min_speech_ms / 1000:
            return []
        assert self._onset is not None
        actions: list[Action] = []
        if self.state in (State.THINKING, State.SPEAKING):
            actions.append(Cancel(self.generation, barge_in=self.state == State.SPEAKING))
            self.generation += 1
        if not reopen or self._turn_onset is None:
            self._turn_onset = self._onset
        actions.append(SpeechStarted(self._onset))
        return actions + self._set_state(State.USER_SPEAKING)

    def _maybe_user_stops(self, now: float) -> list[Action]:
        too_long = (
            self._turn_onset is not None
            and now - self._turn_onset >= self.settings.max_utterance_s
        )
        ended = self._silence_run >= self.settings.end_of_turn_silence_ms / 1000
        if not (ended or too_long):
            return []
        assert self._turn_onset is not None
        self.generation += 1
        end = min(now, self._last_voiced + TAIL_S)
        start = max(0.0, self._turn_onset - self.settings.pre_roll_ms / 1000)
        actions: list[Action] = [
            SpeechStopped(self._last_voiced),
            Transcribe(self.generation, start, end, self._last_voiced),
        ]
        if too_long and not ended:
            # Speech that goes on after the cut starts a new turn from here.
            self._voiced_run = 0.0
            self._turn_onset = None
        return actions + self._set_state(State.THINKING)

    # --- model results --------------------------------------------------------------

    def _on_transcribed(self, event: Transcribed) -> list[Action]:
        if self.state != State.THINKING:
            return []
        if not event.text.strip():
            return self._set_state(State.LISTENING)  # a noise, not words
        return [Respond(event.generation, event.text.strip())]

    def _set_state(self, state: State) -> list[Action]:
        if state == self.state:
            return []
        self.state = state
        return [StateChanged(state)]
