"""The Realtime API's wire vocabulary: client events checked, server events built.

Client events are JSON objects with a `type` (and an optional `event_id` that an
`error` event quotes back). Each supported type is checked here for the fields
voxlive uses, so a bad event gets an `error` that names the field, and the session
goes on. Server events get an `event_id` of their own. The beta dialect (header
`OpenAI-Beta: realtime=v1`) differs only in some event names, renamed on the way out
and in; see BETA_NAMES.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

CLIENT_EVENTS = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "response.create",
    "response.cancel",
)
# Server event names of the GA protocol -> the beta dialect's.
BETA_NAMES = {
    "conversation.item.added": "conversation.item.created",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
}
MAX_EVENT_BYTES = 15 * 1024 * 1024
"""The API's own limit on one client event (an append of ~5 minutes of 24 kHz pcm)."""


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class ProtocolError(ValueError):
    """A client event voxlive cannot carry out; becomes an `error` server event."""

    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind
        self.event_id: str | None = None  # the client event at fault, once known


@dataclass(frozen=True)
class ClientEvent:
    type: str
    event_id: str | None
    data: dict[str, Any]

    def field(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """A field of the event, of the given type; missing or mistyped: ProtocolError."""
        if name not in self.data or self.data[name] is None:
            if default is ...:
                raise ProtocolError(f"{self.type} needs '{name}'", "missing_required_parameter",
                                    name)
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ProtocolError(f"'{name}' of {self.type} has the wrong type", "invalid_type",
                                name)
        return value


def parse_client_event(text: str | bytes) -> ClientEvent:
    """One WebSocket / data channel message as a ClientEvent; ProtocolError when it is not
    a JSON object with a known `type`."""
    if len(text) > MAX_EVENT_BYTES:
        raise ProtocolError(f"event larger than {MAX_EVENT_BYTES} bytes", "event_too_large")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("the event is not JSON", "invalid_json") from None
    except RecursionError:  # thousands of nested brackets: refused, the session goes on
        raise ProtocolError("the event's JSON is nested too deep", "invalid_json") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("an event is a JSON object with a string 'type'",
                            "invalid_event", "type")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data["type"]
    if kind not in CLIENT_EVENTS:
        error = ProtocolError(f"unknown or unsupported event type {kind!r}; supported: "
                              + ", ".join(CLIENT_EVENTS), "invalid_event_type", "type")
        error.event_id = event_id
        raise error
    return ClientEvent(kind, event_id, data)


def error_event(error: ProtocolError) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error.kind, "code": error.code, "message": error.message,
                  "param": error.param, "event_id": error.event_id},
    }


def stamp(event: dict[str, Any], beta: bool = False) -> str:
    """A server event as wire text: an event_id of its own, and beta names when asked."""
    event = {"event_id": new_id("event"), **event}
    if beta:
        event["type"] = BETA_NAMES.get(event["type"], event["type"])
    return json.dumps(event)
