"""A Realtime session's settings: what `session.update` may set, and how it maps to voxlive.

The session object is the GA shape (`{"type": "realtime", "output_modalities",
"instructions", "tools", "audio": {"input": {"format", "transcription",
"turn_detection"}, "output": {"format", "voice"}}}`); the beta dialect's flat fields
(`modalities`, `input_audio_format`, `turn_detection`, ...) are read too. Fields that
voxlive does not act on are kept and echoed back, so a client sees what it set; the
README lists them. A field with a value voxlive cannot honour is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voxlive.config import TurnSettings
from voxlive.realtime.events import ProtocolError
from voxlive.realtime.formats import AudioFormat, AudioFormatError, parse_format
from voxlive.realtime.guard import MAX_INSTRUCTIONS_CHARS, MAX_TOOLS_CHARS, check_setting

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


@dataclass
class TurnDetection:
    """`server_vad`: silence ends the turn. `semantic_vad`: the profile's end-of-turn
    detector (voxlive/turn/detector.py) decides at each pause, and `eagerness` is how long
    an unfinished-sounding pause may last; without a detector it is server_vad.
    None: the client commits the input buffer (push to talk)."""

    type: str = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: str = "auto"

    @classmethod
    def from_voxlive(cls, turn: TurnSettings, threshold: float,
                     semantic: bool = False) -> TurnDetection:
        """The daemon's own endpointing, as a session starts with it (and reports it):
        semantic_vad where the profile has an end-of-turn detector."""
        return cls(type="semantic_vad" if semantic else "server_vad", threshold=threshold,
                   prefix_padding_ms=turn.pre_roll_ms,
                   silence_duration_ms=turn.end_of_turn_silence_ms,
                   interrupt_response=turn.barge_in)

    def as_json(self) -> dict[str, Any]:
        if self.type == "semantic_vad":
            return {"type": self.type, "eagerness": self.eagerness,
                    "create_response": self.create_response,
                    "interrupt_response": self.interrupt_response}
        return {"type": self.type, "threshold": self.threshold,
                "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms,
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response, "idle_timeout_ms": None}

    def turn_settings(self, base: TurnSettings) -> TurnSettings:
        """voxlive's turn settings for this detection: silence ends the turn, the prefix
        is kept before the onset, barge-in follows interrupt_response."""
        silence = max(64, self.silence_duration_ms)
        update: dict[str, Any] = {
            "end_of_turn_silence_ms": silence,
            "speculative_silence_ms": min(base.speculative_silence_ms, silence),
            "pre_roll_ms": self.prefix_padding_ms,
            "barge_in": self.interrupt_response,
        }
        if self.type == "semantic_vad":  # the detector decides; silence is its fallback
            update = {"barge_in": self.interrupt_response, "max_incomplete_silence_ms":
                      EAGERNESS_WAIT_MS.get(self.eagerness, base.max_incomplete_silence_ms)}
        return base.model_copy(update=update)


EAGERNESS_WAIT_MS = {"low": 4000, "medium": 2000, "auto": 2000, "high": 1000}
"""semantic_vad: how long a pause that sounds unfinished may last before the turn ends."""


def _turn_detection(value: Any, param: str, current: TurnDetection | None
                    ) -> TurnDetection | None:
    """The new turn detection; fields not given keep their current values."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in ("server_vad", "semantic_vad"):
        raise ProtocolError("turn_detection is null, {\"type\": \"server_vad\", ...} or "
                            "{\"type\": \"semantic_vad\", ...}", param=param)
    detection = TurnDetection(**{**(current.__dict__ if current else {}),
                                 "type": value["type"]})
    for name, kind in (("threshold", float), ("prefix_padding_ms", int),
                       ("silence_duration_ms", int), ("create_response", bool),
                       ("interrupt_response", bool), ("eagerness", str)):
        if value.get(name) is None:
            continue
        item = value[name]
        ok = isinstance(item, bool) if kind is bool else (
            isinstance(item, str) if kind is str else
            isinstance(item, int | float) and not isinstance(item, bool))
        if not ok:
            raise ProtocolError(f"turn_detection.{name} has the wrong type",
                                "invalid_type", f"{param}.{name}")
        setattr(detection, name, kind(item))
    if not 0.0 <= detection.threshold <= 1.0:
        raise ProtocolError("turn_detection.threshold is between 0 and 1",
                            param=f"{param}.threshold")
    return detection


@dataclass
class SessionConfig:
    model: str = "voxlive"
    instructions: str = ""
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    max_output_tokens: int | str = "inf"
    input_format: AudioFormat = field(default_factory=AudioFormat)
    output_format: AudioFormat = field(default_factory=AudioFormat)
    transcription: dict[str, Any] | None = None
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    voice: str = "alloy"
    speed: float = 1.0
    id: str = ""
    default_detection: TurnDetection | None = None  # what server_vad means here

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "realtime", "object": "realtime.session", "id": self.id,
            "model": self.model, "instructions": self.instructions,
            "output_modalities": self.output_modalities, "tools": self.tools,
            "tool_choice": self.tool_choice, "max_output_tokens": self.max_output_tokens,
            "tracing": None, "truncation": "auto", "prompt": None, "include": None,
            "audio": {
                "input": {"format": self.input_format.as_json(),
                          "transcription": self.transcription, "noise_reduction": None,
                          "turn_detection": self.turn_detection.as_json()
                          if self.turn_detection else None},
                "output": {"format": self.output_format.as_json(), "voice": self.voice,
                           "speed": self.speed},
            },
        }

    @property
    def speaks(self) -> bool:
        return "audio" in self.output_modalities

    def update(self, data: Any) -> None:
        """Apply a `session.update`'s session object; all or nothing."""
        if not isinstance(data, dict):
            raise ProtocolError("session.update needs a 'session' object", param="session")
        new = SessionConfig(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        audio = data.get("audio") if isinstance(data.get("audio"), dict) else {}
        audio_in = audio.get("input") if isinstance(audio.get("input"), dict) else {}
        audio_out = audio.get("output") if isinstance(audio.get("output"), dict) else {}
        if data.get("type") not in (None, "realtime"):
            raise ProtocolError("voxlive serves 'realtime' sessions (not transcription)",
                                param="session.type")
        if "instructions" in data:
            new.instructions = _text(data["instructions"], "session.instructions")
            check_setting(new.instructions, MAX_INSTRUCTIONS_CHARS, "session.instructions")
        modalities = data.get("output_modalities", data.get("modalities"))
        if modalities is not None:
            new.output_modalities = _modalities(modalities)
        if "tools" in data:
            new.tools = checked_tools(data["tools"])
        if "tool_choice" in data:
            new.tool_choice = data["tool_choice"]
        limit = data.get("max_output_tokens", data.get("max_response_output_tokens"))
        if limit is not None:
            new.max_output_tokens = max_tokens(limit, "session.max_output_tokens")
        try:
            if "format" in audio_in or "input_audio_format" in data:
                new.input_format = parse_format(audio_in.get("format",
                                                             data.get("input_audio_format")))
            if "format" in audio_out or "output_audio_format" in data:
                new.output_format = parse_format(audio_out.get("format",
                                                               data.get("output_audio_format")))
        except AudioFormatError as exc:
            raise ProtocolError(str(exc), "invalid_audio_format",
                                "session.audio.format") from None
        for source, key in ((audio_in, "transcription"), (data, "input_audio_transcription")):
            if key in source:
                value = source[key]
                if value is not None and not isinstance(value, dict):
                    raise ProtocolError("transcription is null or an object",
                                        param=f"session.audio.input.{key}")
                new.transcription = value
        for source, key in ((audio_in, "turn_detection"), (data, "turn_detection")):
            if key in source:
                new.turn_detection = _turn_detection(
                    source[key], "session.audio.input.turn_detection",
                    self.turn_detection or self.default_detection)
        voice = audio_out.get("voice", data.get("voice"))
        if voice is not None:
            new.voice = _text(voice, "session.audio.output.voice")
        if "model" in data and isinstance(data["model"], str):
            new.model = data["model"]
        self.__dict__.update(new.__dict__)


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{param} must be a string", "invalid_type", param)
    return value


def _modalities(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not set(value) <= {"audio", "text"}:
        raise ProtocolError("output_modalities is [\"audio\"] or [\"text\"]",
                            param="session.output_modalities")
    return ["audio"] if "audio" in value else ["text"]


def max_tokens(value: Any, param: str) -> int | str:
    if value == "inf":
        return "inf"
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
        raise ProtocolError("max_output_tokens is 1 to 4096 or \"inf\"", param=param)
    return value


def checked_tools(value: Any, param: str = "session.tools") -> list[dict[str, Any]]:
    """A session's or a response's `tools`: function tools, within MAX_TOOLS_CHARS."""
    if not isinstance(value, list):
        raise ProtocolError("tools must be a list", "invalid_type", param)
    check_setting(value, MAX_TOOLS_CHARS, param)
    for i, tool in enumerate(value):
        if (not isinstance(tool, dict) or tool.get("type", "function") != "function"
                or not isinstance(tool.get("name"), str)):
            raise ProtocolError("a tool is {\"type\": \"function\", \"name\": ..., "
                                "\"parameters\": {...}} (MCP tools are not supported)",
                                param=f"{param}[{i}]")
    return value


def chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Realtime function tools in the chat completions shape the LLM backends take."""
    return [{"type": "function", "function": {
        "name": t["name"], "description": t.get("description", ""),
        "parameters": t.get("parameters") or {"type": "object", "properties": {}}}}
        for t in tools]
