"""One WebRTC call as the daemon holds it: its peer connection, session and events channel.

The events channel is where a client could kill a call with one message (a 100k-deep
JSON, invalid UTF-8, a huge `type` echoed back over the channel's size limit), so every
message passes the call's EventsGuard first, and a send that fails is logged, not raised
into the session.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from voxlive.config.limits import ServerLimits
from voxlive.events import ErrorEvent
from voxlive.server.call_guard import CallClock, EventsGuard
from voxlive.server.guards import LogLimiter
from voxlive.server.metrics import Metrics
from voxlive.session import CallSession

log = logging.getLogger(__name__)

MAX_QUEUED_EVENTS = 256
MAX_EVENT_BYTES = 60_000
"""Below aiortc's 65,536-byte SCTP message limit (a larger send fails)."""
SEND_ERRORS = LogLimiter(period_s=5.0)


@dataclass
class Call:
    call_id: str
    pc: RTCPeerConnection
    session: CallSession
    metrics: Metrics
    limits: ServerLimits = field(default_factory=ServerLimits)
    channel: RTCDataChannel | None = None
    queued: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    clock: CallClock = field(default_factory=CallClock)
    channels_opened: int = 0
    ended: str | None = None  # why the call ended (a limit, a fault), once it has
    guard: EventsGuard = field(init=False)
    # Another protocol on the same call path (the Realtime API, voxlive/realtime/calls.py):
    channel_label: str = "events"
    on_message: Callable[[str], None] | None = None
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.guard = EventsGuard(self.limits)

    def send_event(self, event: dict[str, Any]) -> None:
        self.metrics.observe_event(event)
        text = json.dumps(event)
        if len(text) > MAX_EVENT_BYTES:
            text = json.dumps({"type": event.get("type", "error"), "truncated": True})
        if self.channel is not None and self.channel.readyState == "open":
            try:
                self.channel.send(text)
            except Exception as exc:  # the transport is going away: the watchdog ends it
                if SEND_ERRORS.should_log("send"):
                    log.warning("call %s: event not sent: %s", self.call_id, exc)
        elif len(self.queued) < MAX_QUEUED_EVENTS:
            self.queued.append(text)

    def attach_channel(self, channel: RTCDataChannel) -> None:
        self.channel = channel

        def flush() -> None:
            for text in self.queued:
                channel.send(text)
            self.queued.clear()

        if channel.readyState == "open":
            flush()
        else:
            channel.on("open", flush)
        channel.on("message", self._on_message)

    def _on_message(self, message: str | bytes) -> None:
        text, error = self.guard.check(message)
        if error is not None:
            self.send_event(ErrorEvent(error, None).to_dict())
        if text is not None:
            (self.on_message or self.session.handle_client_message)(text)
