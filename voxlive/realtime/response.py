"""One Realtime response: the server events from `response.created` to `response.done`.

A response answers one voxlive generation (one reply of CallSession). Its assistant
message item is opened at its first text or audio, so a response that only calls
functions has only function_call items, as the API's do. Usage is counted in words of
the prompt and the reply (voxlive's backends do not all report tokens); the README
says so.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voxlive.realtime.events import new_id
from voxlive.realtime.items import message_item

Send = Callable[[dict[str, Any]], None]


@dataclass
class Response:
    generation: int
    send: Send
    speaks: bool
    max_output_tokens: int | str = "inf"
    voice: str = "alloy"
    output_format: dict[str, Any] = field(default_factory=dict)
    input_words: int = 0
    id: str = field(default_factory=lambda: new_id("resp"))
    output: list[dict[str, Any]] = field(default_factory=list)
    message: dict[str, Any] | None = None
    text: str = ""
    audio_bytes: int = 0
    done: bool = False
    on_item: Callable[[dict[str, Any]], str | None] | None = None  # adds it to the items

    def _json(self, status: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        words = len(self.text.split())
        return {
            "id": self.id, "object": "realtime.response", "status": status,
            "status_details": details, "output": self.output, "conversation_id": "conv_voxlive",
            "output_modalities": ["audio"] if self.speaks else ["text"],
            "max_output_tokens": self.max_output_tokens,
            "audio": {"output": {"format": self.output_format, "voice": self.voice}},
            "usage": None if status == "in_progress" else {
                "total_tokens": self.input_words + words, "input_tokens": self.input_words,
                "output_tokens": words,
                "input_token_details": {"text_tokens": self.input_words, "audio_tokens": 0,
                                        "cached_tokens": 0},
                "output_token_details": {"text_tokens": words, "audio_tokens": 0},
            },
            "metadata": None,
        }

    def created(self) -> None:
        self.send({"type": "response.created", "response": self._json("in_progress")})

    @property
    def part_type(self) -> str:
        return "audio" if self.speaks else "text"

    def _open_message(self) -> dict[str, Any]:
        if self.message is None:
            part = {"type": "output_audio", "transcript": ""} if self.speaks \
                else {"type": "output_text", "text": ""}
            self.message = message_item("assistant", part, status="in_progress")
            self._add_item(self.message)
            empty = {"type": "audio", "transcript": ""} if self.speaks \
                else {"type": "text", "text": ""}
            self.send({"type": "response.content_part.added", **self._where(), "part": empty})
        return self.message

    def _add_item(self, item: dict[str, Any]) -> None:
        index = len(self.output)
        self.output.append(item)
        self.send({"type": "response.output_item.added", "response_id": self.id,
                   "output_index": index, "item": item})
        previous = self.on_item(item) if self.on_item else None
        self.send({"type": "conversation.item.added", "previous_item_id": previous,
                   "item": item})

    def _where(self) -> dict[str, Any]:
        assert self.message is not None
        return {"response_id": self.id, "item_id": self.message["id"],
                "output_index": self.output.index(self.message), "content_index": 0}

    def add_text(self, text: str) -> None:
        """The reply's words so far (CallSession's assistant_text); sends the new part."""
        if self.done or not text.startswith(self.text) or text == self.text:
            return
        self._open_message()
        delta, self.text = text[len(self.text):], text
        kind = ("response.output_audio_transcript.delta" if self.speaks
                else "response.output_text.delta")
        self.send({"type": kind, **self._where(), "delta": delta})

    def add_audio(self, data: bytes) -> None:
        if self.done or not data:
            return
        self._open_message()
        self.audio_bytes += len(data)
        self.send({"type": "response.output_audio.delta", **self._where(),
                   "delta": base64.b64encode(data).decode("ascii")})

    def add_function_call(self, name: str, arguments: str, call_id: str) -> None:
        item = {"id": new_id("item"), "object": "realtime.item", "type": "function_call",
                "status": "completed", "call_id": call_id or new_id("call"), "name": name,
                "arguments": arguments}
        self._add_item(item)
        where = {"response_id": self.id, "item_id": item["id"],
                 "output_index": self.output.index(item), "call_id": item["call_id"]}
        self.send({"type": "response.function_call_arguments.delta", **where,
                   "delta": arguments})
        self.send({"type": "response.function_call_arguments.done", **where, "name": name,
                   "arguments": arguments})
        self.send({"type": "response.output_item.done", "response_id": self.id,
                   "output_index": where["output_index"], "item": item})
        self.send({"type": "conversation.item.done", "item": item})

    def finish(self, status: str, reason: str | None = None, heard: str | None = None,
               error: dict[str, Any] | None = None) -> None:
        """Close the open parts and send `response.done`. `heard`: a cut reply keeps only
        the words the user heard (voxlive's history rule)."""
        if self.done:
            return
        self.done = True
        if self.message is not None:
            if heard is not None:
                self.text = heard
            where = self._where()
            if self.speaks:
                part = {"type": "audio", "transcript": self.text}
                self.message["content"][0]["transcript"] = self.text
                self.send({"type": "response.output_audio.done", **where})
                self.send({"type": "response.output_audio_transcript.done", **where,
                           "transcript": self.text})
            else:
                part = {"type": "text", "text": self.text}
                self.message["content"][0]["text"] = self.text
                self.send({"type": "response.output_text.done", **where, "text": self.text})
            self.message["status"] = "completed" if status == "completed" else "incomplete"
            self.send({"type": "response.content_part.done", **where, "part": part})
            self.send({"type": "response.output_item.done", "response_id": self.id,
                       "output_index": where["output_index"], "item": self.message})
            self.send({"type": "conversation.item.done", "item": self.message})
        details = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": reason or "client_cancelled"}
        elif status == "failed":
            details = {"type": "failed", "error": error}
        self.send({"type": "response.done", "response": self._json(status, details)})
        self.send({"type": "rate_limits.updated", "rate_limits": [
            {"name": "requests", "limit": 1000, "remaining": 1000, "reset_seconds": 0.0},
            {"name": "tokens", "limit": 1_000_000, "remaining": 1_000_000,
             "reset_seconds": 0.0}]})
