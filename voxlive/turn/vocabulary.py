"""The turn core's vocabulary: the events it takes in and the actions it hands out.

Plain frozen data, apart from the state machine (voxlive/turn/core.py) so that the runtime
(voxlive/session.py) and the tests read what the core speaks in one place. The semantic
end of turn's own event and action types live with their rule in turn/end_of_turn.py and
join the unions here. `from voxlive.turn.core import X` still finds every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voxlive.turn.end_of_turn import CommitRule, JudgeFailed, JudgeTurn, TurnJudged, VoiceJudged


class State(StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"


# --- events in --------------------------------------------------------------------------


@dataclass(frozen=True)
class VadWindow:
    """One VAD decision; `t` is the window's end, `duration` its length, in seconds.
    `echo` marks a window whose sound is the assistant's own voice coming back."""

    t: float
    probability: float
    duration: float = 0.032
    echo: bool = False


@dataclass(frozen=True)
class Transcribed:
    """`echo`: the words are the paused reply's own (turn/echo_words.py), not the user's."""

    generation: int
    text: str
    confidence: float = 1.0
    echo: bool = False


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


@dataclass(frozen=True)
class ClientTurn:
    """A user turn the client ended itself (a typed message, a push-to-talk commit, a
    Realtime `response.create`): no endpointing, the reply to `text` starts and may play.
    A reply still playing or being made is cut first (the user spoke over it)."""

    text: str


@dataclass(frozen=True)
class ClientCancel:
    """The client cancels the current reply (Realtime `response.cancel`)."""


Event = (
    VadWindow | Transcribed | ReplyAudioStarted | ReplyPlayed | StageFailed | TurnJudged
    | JudgeFailed | ClientTurn | ClientCancel | VoiceJudged
)


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
    """Generate the reply; keep its audio back until the turn is committed. `unclear`:
    the words were not made out, so the reply asks the user to say them again."""

    generation: int
    user_text: str
    unclear: bool = False


@dataclass(frozen=True)
class TurnCommitted:
    """The user's turn is over: the reply of this generation may play."""

    generation: int
    rule: CommitRule = CommitRule.TIMEOUT


@dataclass(frozen=True)
class PauseReply:
    """Silence the output now, keeping what is queued: the user may be interrupting.
    `hold_synthesis`: no new sentence is synthesised while paused, so the CPU goes to
    transcribing what the user says (is it an interruption?), not to speech that may go."""

    generation: int
    hold_synthesis: bool = True


@dataclass(frozen=True)
class ResumeReply:
    """It was not an interruption (no words): play on from where it paused."""

    generation: int


@dataclass(frozen=True)
class Cancel:
    """Drop generation N: close its LLM stream, stop its TTS, clear its audio now.
    `barge_in`: the user heard part of it (speech or the client cut it). The core's
    decisions, so that the runtime derives none: `cut_by_speech`: it was playing, not
    paused, when cut, so the barge-in is timed from here; `keep_heard`: the history takes
    the user's words and the heard part of the reply, marked interrupted."""

    generation: int
    barge_in: bool
    cut_by_speech: bool = False
    keep_heard: bool = False


@dataclass(frozen=True)
class CommitHistory:
    """The reply was played to its end: the history takes the user's words and the reply."""

    generation: int


@dataclass(frozen=True)
class UserSaid:
    """The transcript of the current turn holds words: show them (and how they sounded).
    A stale transcript (the turn was reopened or superseded) gets no UserSaid."""

    generation: int
    text: str


@dataclass(frozen=True)
class ForgetTurn:
    """The turn held no words (a noise): nothing of it is said or kept."""

    generation: int


@dataclass(frozen=True)
class ReportError:
    stage: str
    message: str


Action = (
    StateChanged | SpeechStarted | SpeechStopped | Transcribe | Respond | TurnCommitted
    | PauseReply | ResumeReply | Cancel | ReportError | JudgeTurn | CommitHistory | UserSaid
    | ForgetTurn
)
