"""What one Realtime API client may send and hold, beyond the size of one event.

A WebSocket session has no media track and no events channel, so the WebRTC call's
guards (voxlive/server/call_guard.py) never see it, and one 15 MB append of G.711 is 30
minutes of audio that the VAD thread every call shares would have to hear. Each limit
answers with the API's `error` event and keeps what was accepted before:
- events a second (`server.limits.realtime_events_per_second`, bursts of two seconds'
  worth): each costs a JSON parse and a dispatch on the event loop;
- audio no faster than `max_audio_speed` x real time, after a burst of one turn's worth
  (`turn.max_utterance_s`, so a recorded question may come in one append), whether
  appended to the buffer or in a created item; the size is judged before decoding;
- the conversation: at most `MAX_ITEMS` items and `MAX_CONVERSATION_CHARS` characters
  as they were added (the client deletes old ones to add more); the instructions and the
  tools at most `MAX_INSTRUCTIONS_CHARS` and `MAX_TOOLS_CHARS`;
- an audio item created while `MAX_PENDING_TRANSCRIPTIONS` transcriptions (of commits
  or of created items) are running is refused.
The WebSocket also ends after `realtime_idle_timeout_s` without a client event or
`max_call_s` in all, and keeps at most `MAX_QUEUED_BYTES` of server events for a client
that does not read (ws.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from voxlive.config.limits import ServerLimits
from voxlive.realtime.events import ProtocolError
from voxlive.server.guards import TokenBucket

MAX_ITEMS = 1_000
MAX_CONVERSATION_CHARS = 2_000_000
"""About 500,000 tokens: far past any model's context, well under what memory allows."""
MAX_INSTRUCTIONS_CHARS = 100_000
MAX_TOOLS_CHARS = 200_000
MAX_PENDING_TRANSCRIPTIONS = 2
MAX_QUEUED_BYTES = 64 * 2**20


class ClientGuard:
    def __init__(self, limits: ServerLimits, burst_audio_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._events = TokenBucket(2 * limits.realtime_events_per_second,
                                   limits.realtime_events_per_second, clock)
        self._audio = TokenBucket(burst_audio_s, limits.max_audio_speed, clock)

    def admit_event(self) -> None:
        if not self._events.take():
            raise ProtocolError(f"too many events (limit {self.limits.realtime_events_per_second:g}"
                                " a second); this one was dropped", "rate_limit_exceeded")

    def admit_audio(self, seconds: float) -> None:
        if not self._audio.take(seconds):
            raise ProtocolError(
                f"{seconds:.1f} s of audio arrived faster than "
                f"{self.limits.max_audio_speed:g}x real time; it was dropped: send audio as "
                "it is spoken, or a recording a turn at a time", "audio_rate_exceeded")


def size_of(value: Any) -> int:
    """Characters of a JSON value (an item, the tools)."""
    return len(value) if isinstance(value, str) else len(json.dumps(value, default=str))


def check_room(count: int, chars: int, item: dict[str, Any]) -> None:
    """ProtocolError unless a conversation of `count` items and `chars` characters can
    take the client's `item`."""
    if count >= MAX_ITEMS:
        raise ProtocolError(f"the conversation holds {MAX_ITEMS} items; delete some first",
                            "conversation_full")
    if chars + size_of(item) > MAX_CONVERSATION_CHARS:
        raise ProtocolError(f"the conversation would hold over {MAX_CONVERSATION_CHARS} "
                            "characters; delete items first", "conversation_full")


def check_setting(value: Any, limit: int, param: str) -> None:
    if size_of(value) > limit:
        raise ProtocolError(f"{param} is over {limit} characters", "string_above_max_length",
                            param)
