"""The events on the `events` data channel, one dataclass per type: the wire's vocabulary.

Every event voxlive sends to the page (and the one it receives, `ping`) is declared here
once, with its fields, so that a typo in an event name or a field is a programming error
at the call site (`make_event` raises), not a silent event the page ignores. The README's
events table and the page (voxlive/web/app.js) list the same types: a unit test checks it.

`to_dict()` is the wire form: `{"type": ..., **fields}`. Fields in `OMIT_IF_NONE` are left
out when None (a `tool_call` event has an `error` only when the tool failed); the others
go out as null, as they always did. Where the code says `generation`, the wire says `turn`
(clients depend on it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar


class UnknownEvent(ValueError):
    """An event type that voxlive does not send: a bug in the caller."""


@dataclass(frozen=True)
class WireEvent:
    """One JSON event on the data channel."""

    type: ClassVar[str] = ""
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.name in self.OMIT_IF_NONE:
                continue
            out[field.name] = value
        return out


# --- sent by voxlive --------------------------------------------------------------------


@dataclass(frozen=True)
class Ready(WireEvent):
    type: ClassVar[str] = "ready"
    call_id: str
    profile: str


@dataclass(frozen=True)
class StateEvent(WireEvent):
    type: ClassVar[str] = "state"
    state: str  # listening, user_speaking, thinking, speaking


@dataclass(frozen=True)
class SpeechStartedEvent(WireEvent):
    type: ClassVar[str] = "speech_started"
    t: float  # seconds of call audio


@dataclass(frozen=True)
class SpeechStoppedEvent(WireEvent):
    type: ClassVar[str] = "speech_stopped"
    t: float


@dataclass(frozen=True)
class TurnCommittedEvent(WireEvent):
    type: ClassVar[str] = "turn_committed"
    turn: int
    rule: str  # semantic, timeout, max_utterance


@dataclass(frozen=True)
class TurnJudgedEvent(WireEvent):
    """The end-of-turn detector's verdict (turn/call_judge.py) and what it cost."""

    type: ClassVar[str] = "turn_judged"
    turn: int
    complete: bool
    probability: float
    audio: float | None
    text: float | None
    compute_ms: float  # audio_ms + text_ms: the models' own time
    audio_ms: float
    text_ms: float
    decision_ms: float
    after_transcript_ms: float | None


@dataclass(frozen=True)
class UserTranscript(WireEvent):
    """`language`: the ISO 639-1 code of the language the words were heard in, only where
    it is not the profile's own (the multilingual fallback chose it: stt_languages.py), so
    a page can show why the reply is in French."""

    type: ClassVar[str] = "user_transcript"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"language"})
    turn: int
    text: str
    language: str | None = None


@dataclass(frozen=True)
class UserEmotion(WireEvent):
    type: ClassVar[str] = "user_emotion"
    turn: int
    label: str
    confidence: float
    backend: str
    arousal: float | None
    scores: dict[str, float]


@dataclass(frozen=True)
class AssistantText(WireEvent):
    type: ClassVar[str] = "assistant_text"
    turn: int
    text: str  # the reply so far
    final: bool


@dataclass(frozen=True)
class TurnLatency(WireEvent):
    """Where the reply's time went (latency.TurnTiming.report; README defines them)."""

    type: ClassVar[str] = "turn_latency"
    turn: int
    voice_to_voice_ms: float
    endpointing_ms: float
    stt_ms: float
    stt_wait_ms: float
    emotion_wait_ms: float
    vision_ms: float
    llm_first_token_ms: float
    first_sentence_ms: float
    tts_first_audio_ms: float
    output_queue_ms: float


@dataclass(frozen=True)
class Interrupted(WireEvent):
    type: ClassVar[str] = "interrupted"
    turn: int
    heard_text: str


@dataclass(frozen=True)
class Resumed(WireEvent):
    type: ClassVar[str] = "resumed"
    turn: int


@dataclass(frozen=True)
class BargeIn(WireEvent):
    """The reply went silent under the user's speech (latency.BargeInTiming.report)."""

    type: ClassVar[str] = "barge_in"
    turn: int
    onset_to_silence_ms: float
    onset_to_decision_ms: float
    frames_after_decision: int
    onset_at: float  # the same moments on the monotonic clock, seconds
    decided_at: float
    silent_at: float
    audible_until_at: float
    received: list[list[float]]  # [RTP time, reached the VAD at, RMS] of the input frames


@dataclass(frozen=True)
class ReplyPlayed(WireEvent):
    type: ClassVar[str] = "reply_played"
    turn: int


@dataclass(frozen=True)
class ReplyCancelled(WireEvent):
    type: ClassVar[str] = "reply_cancelled"
    turn: int
    heard_text: str


@dataclass(frozen=True)
class Vision(WireEvent):
    type: ClassVar[str] = "vision"
    turn: int
    reason: str  # call_start, intent, tool
    cached: bool
    caption: str
    labels: list[list[Any]]  # [label, score]
    backend: str
    thumbnail: str | None  # a JPEG data URL


@dataclass(frozen=True)
class ToolCallEvent(WireEvent):
    """A call of one of voxlive's tools (tools/runner.py): once running, once ended."""

    type: ClassVar[str] = "tool_call"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset(
        {"duration_ms", "error", "error_kind", "images"})
    turn: int
    id: str
    name: str
    arguments: str  # a short summary
    status: str  # running, ok, error, cancelled, needs_confirmation
    duration_ms: int | None = None
    error: str | None = None
    error_kind: str | None = None
    images: list[str] | None = None


@dataclass(frozen=True)
class ToolCalls(WireEvent):
    """The model called the client's own tools (a Realtime client's): the client runs them."""

    type: ClassVar[str] = "tool_calls"
    turn: int
    calls: list[dict[str, Any]]  # name, arguments, call_id


@dataclass(frozen=True)
class ErrorEvent(WireEvent):
    type: ClassVar[str] = "error"
    message: str
    stage: str | None  # stt, llm, tts, tools, vision, emotion, turn_detector, pipeline, call


@dataclass(frozen=True)
class Pong(WireEvent):
    type: ClassVar[str] = "pong"


@dataclass(frozen=True)
class CallEnded(WireEvent):
    type: ClassVar[str] = "call_ended"
    reason: str


# --- received from the client ------------------------------------------------------------


@dataclass(frozen=True)
class Ping(WireEvent):
    type: ClassVar[str] = "ping"


SENT: dict[str, type[WireEvent]] = {cls.type: cls for cls in (
    Ready, StateEvent, SpeechStartedEvent, SpeechStoppedEvent, TurnCommittedEvent,
    TurnJudgedEvent, UserTranscript, UserEmotion, AssistantText, TurnLatency, Interrupted,
    Resumed, BargeIn, ReplyPlayed, ReplyCancelled, Vision, ToolCallEvent, ToolCalls,
    ErrorEvent, Pong, CallEnded,
)}
"""Every event type voxlive sends, by its wire name."""
RECEIVED: dict[str, type[WireEvent]] = {Ping.type: Ping}
"""Every event type a client may send."""


def make_event(kind: str, **values: Any) -> WireEvent:
    """The event `kind` with these fields; an unknown type or field raises (a caller's bug)."""
    cls = SENT.get(kind)
    if cls is None:
        raise UnknownEvent(f"voxlive sends no event of type {kind!r}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise UnknownEvent(f"bad fields for the {kind!r} event: {exc}") from exc


def answer_client(message: str) -> WireEvent:
    """The answer to one message from the client: `pong` to a `ping`, else an `error`."""
    try:
        data = json.loads(message)
        kind = data["type"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return ErrorEvent("events must be JSON objects with a 'type'", None)
    if isinstance(kind, str) and kind in RECEIVED:
        return Pong()
    # never echo more than a few bytes of what the client sent
    return ErrorEvent(f"unknown event type {str(kind)[:40]!r}", None)
