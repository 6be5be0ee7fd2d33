"""`server.limits` in models.yaml: what one client, one call or one socket may use.

Each limit answers with a clear JSON error (HTTP) or ends the call with an `error`
event and a reason, so a clumsy or hostile client cannot hold a slot, a socket or a CPU.
Kept apart from schema.py so that the server's guards read as one list.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServerLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # calls
    connect_timeout_s: float = Field(15.0, gt=0)  # offer -> connected, else the slot is freed
    max_call_s: float = Field(3600.0, gt=0)  # then the call ends with a reason
    no_audio_timeout_s: float = Field(60.0, gt=0)  # no audio frame for this long: hang up
    offers_per_minute: int = Field(30, ge=1)  # per client address
    # the offer
    max_m_lines: int = Field(3, ge=1)  # audio + video + data channel
    max_data_channels: int = Field(2, ge=1)
    # the events channel
    max_message_bytes: int = Field(16_384, ge=256)
    messages_per_second: float = Field(20.0, gt=0)  # sustained; bursts of 2 s allowed
    max_json_depth: int = Field(16, ge=2)
    # a Realtime API WebSocket (voxlive/realtime/guard.py)
    realtime_events_per_second: float = Field(100.0, gt=0)  # sustained; bursts of 2 s
    realtime_idle_timeout_s: float = Field(300.0, gt=0)  # no client event: the session ends
    # media
    max_audio_speed: float = Field(1.5, ge=1.0)  # input faster than this x real time is dropped
    max_video_pixels: int = Field(1920 * 1080, ge=64 * 64)
    max_video_fps: float = Field(30.0, gt=0)
    # the HTTP server
    max_connections: int = Field(256, ge=4)
    header_timeout_s: float = Field(10.0, gt=0)  # a request's headers, from connect/last reply
    body_timeout_s: float = Field(10.0, gt=0)
    keepalive_timeout_s: float = Field(15.0, gt=0)
    # health
    max_loop_lag_s: float = Field(2.0, gt=0)  # /healthz not ok above this event-loop lag
