"""A Realtime session's responses, by the CallSession turn (generation) each answers.

CallSession numbers its turns; the Realtime API speaks of responses and items. This
keeps the map between them: the options a `response.create` asked for a turn, the user
item a voice turn became, the response opened when the turn commits, and how it ends
(completed, cancelled by the client or by the user talking, failed). One `Response`
(response.py) writes its own events; this decides when there is one and how it closes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from voxlive.realtime.config import SessionConfig
from voxlive.realtime.events import ProtocolError
from voxlive.realtime.items import Items
from voxlive.realtime.response import Response


class TurnResponses:
    def __init__(self, settings: SessionConfig, items: Items,
                 send: Callable[[dict[str, Any]], None], webrtc: bool,
                 restore: Callable[[], None]):
        self.settings = settings
        self.items = items
        self.send = send
        self.webrtc = webrtc  # the audio goes on a WebRTC track, not in events
        self._restore = restore  # the session's own reply options, after a response's own
        self._open: dict[int, Response] = {}
        self._options: dict[int, dict[str, Any]] = {}  # per-response overrides
        self._user_items: dict[int, str] = {}  # voice turn generation -> its user item
        self.failed: dict[str, Any] | None = None  # the error the next response ends with
        self.client_cancelled = False  # the next cancel is the client's, not the user's

    def get(self, generation: int | None) -> Response | None:
        return self._open.get(generation) if generation is not None else None

    def of_item(self, item: dict[str, Any]) -> Response | None:
        return next((r for r in self._open.values() if r.message is item), None)

    def plan(self, generation: int, options: dict[str, Any]) -> None:
        """A `response.create`'s overrides (instructions, speaks, limit) for that turn."""
        self._options[generation] = options

    def options_for(self, generation: int) -> dict[str, Any]:
        return self._options.get(generation, {})

    def user_item(self, generation: int, item_id: str) -> None:
        """The user item a voice turn's words became (dropped if the turn reopens)."""
        self._user_items[generation] = item_id

    def may_reply(self, generation: int) -> bool:
        """A voice turn is answered unless turn_detection.create_response is false."""
        detection = self.settings.turn_detection
        return generation in self._options or detection is None or detection.create_response

    def open(self, generation: int) -> None:
        """The turn committed: its response begins (if it is to be answered)."""
        self.failed = None  # an earlier failure (no response then) is not this one's
        if not self.may_reply(generation):
            return
        options = self._options.get(generation, {})
        response = Response(
            generation, self.send, options.get("speaks", self.settings.speaks),
            max_output_tokens=options.get("limit", self.settings.max_output_tokens),
            voice=self.settings.voice, output_format=self.settings.output_format.as_json(),
            input_words=sum(len(str(m.get("content") or "").split())
                            for m in self.items.messages(self.settings.instructions)),
            on_item=self.items.add)
        self._open[generation] = response
        response.created()

    def played(self, generation: int) -> None:
        self.buffer_event("stopped", generation)
        self.close(generation, "completed")

    def close(self, generation: int, status: str, reason: str | None = None,
              heard: str | None = None) -> None:
        response = self._open.pop(generation, None)
        self._options.pop(generation, None)
        self._user_items.pop(generation, None)
        if response is None:
            return
        failed, self.failed = self.failed, None
        if failed is not None and status != "completed":
            response.finish("failed", error=failed)
        else:
            response.finish(status, reason, heard)
        self._restore()

    def cancelled(self, generation: int, heard: str) -> None:
        self.buffer_event("cleared", generation)
        if generation not in self._open:
            # A speculative reply dropped because the user went on talking: the turn
            # reopens, and its words come again as one new item.
            item_id = self._user_items.pop(generation, None)
            if item_id is not None:
                with contextlib.suppress(ProtocolError):
                    self.items.delete(item_id)
                    self.send({"type": "conversation.item.deleted", "item_id": item_id})
            return
        reason = "client_cancelled" if self.client_cancelled else "turn_detected"
        self.client_cancelled = False
        self.close(generation, "cancelled", reason, heard)

    def buffer_event(self, what: str, generation: int | None) -> None:
        """WebRTC mode: the `output_audio_buffer.*` events (the audio is on the track)."""
        response = self.get(generation)
        if self.webrtc and response is not None and response.speaks:
            self.send({"type": f"output_audio_buffer.{what}", "response_id": response.id})
