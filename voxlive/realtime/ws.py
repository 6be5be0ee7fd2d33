"""`GET /v1/realtime?model=...`: the Realtime API over a WebSocket, on the daemon's port.

Who may connect is the daemon's auth middleware (voxlive/server/auth.py): an API key
as `Authorization: Bearer KEY` (what the openai SDK sends), or a single-use call token
(`?token=`, or a client secret from `POST /v1/realtime/client_secrets` as the Bearer);
with no key configured, loopback callers need none. A session counts against
`server.max_calls` like a WebRTC call. Server events are queued by the session and
written by one writer task, so a slow client never blocks the session's callbacks.
The beta dialect is chosen by the `OpenAI-Beta: realtime=v1` header or the
`openai-beta.realtime-v1` subprotocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from voxlive.config.limits import ServerLimits
from voxlive.realtime.events import (
    MAX_EVENT_BYTES,
    ProtocolError,
    new_id,
    parse_client_event,
    stamp,
)
from voxlive.realtime.guard import MAX_QUEUED_BYTES
from voxlive.realtime.session import RealtimeSession
from voxlive.server.auth import authorize_call
from voxlive.transports.webrtc import FramePacer

log = logging.getLogger(__name__)

SUBPROTOCOLS = ("realtime",)
SESSIONS = web.AppKey("realtime_sessions", set)
MAX_QUEUED_EVENTS = 10_000
"""Server events waiting for a client that does not read: past this (or past
`MAX_QUEUED_BYTES` of them, voxlive/realtime/guard.py), the next is dropped."""
HEARTBEAT_S = 30.0
"""A ping this often; a peer that does not answer within half of it is gone."""


def daemon_of(request: web.Request) -> Any:
    return daemon_of_app(request.app)


def daemon_of_app(app: web.Application) -> Any:
    from voxlive.server.app import DAEMON

    return app[DAEMON]


def refuse_if_full(request: web.Request) -> None:
    daemon = daemon_of(request)
    if daemon.live_calls() >= daemon.config.server.max_calls:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": {"type": "server_error", "code": "too_many_sessions",
                                       "message": "too many calls; try again later"}}),
            content_type="application/json")



def is_beta(request: web.Request) -> bool:
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    return ("realtime=v1" in request.headers.get("OpenAI-Beta", "")
            or "openai-beta.realtime-v1" in offered)


async def realtime_socket(request: web.Request) -> web.StreamResponse:
    refuse_if_full(request)
    authorize_call(request)  # a call token (client secret) opens one session only
    daemon = daemon_of(request)
    beta = is_beta(request)
    ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, max_msg_size=MAX_EVENT_BYTES,
                               compress=False, heartbeat=HEARTBEAT_S)
    await ws.prepare(request)
    outbox = Outbox()

    def send(event: dict[str, Any]) -> None:
        outbox.put(stamp(event, beta))

    session = RealtimeSession(daemon.models, daemon.config, daemon.vad_threshold, send,
                              model=request.query.get("model", "voxlive"),
                              call_id=new_id("rtc"), observe=daemon.metrics.observe_event)
    request.app[SESSIONS].add(ws)
    loop = asyncio.get_running_loop()
    writer = loop.create_task(_write(ws, outbox))
    pump = loop.create_task(pump_audio(session))
    session.start()
    ended: str | None = None  # why the daemon ends the session, if it does
    try:
        ended = await _receive(ws, session, daemon.limits)
    finally:
        request.app[SESSIONS].discard(ws)
        pump.cancel()
        await session.close()
        outbox.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(writer, 2)
        if ended is not None and not ws.closed:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=ended.encode()[:120])
    return ws


async def _receive(ws: web.WebSocketResponse, session: RealtimeSession,
                   limits: ServerLimits) -> str | None:
    """Hand the client's events to the session until the client leaves (None), or it
    has sent nothing for `realtime_idle_timeout_s` or the session has run `max_call_s`
    (the reason, also sent as an `error` event)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.max_call_s
    while True:
        left = deadline - loop.time()
        try:
            if left <= 0:  # (aiohttp reads a timeout of 0 as none at all)
                raise TimeoutError
            message = await ws.receive(timeout=min(limits.realtime_idle_timeout_s, left))
        except TimeoutError:
            over = loop.time() >= deadline
            reason = (f"the session ran {limits.max_call_s:g} s, the longest allowed" if over
                      else f"no event from the client for {limits.realtime_idle_timeout_s:g} s")
            session.error(ProtocolError(reason, "session_expired"))
            return reason
        if message.type == WSMsgType.TEXT:
            try:
                session.guard.admit_event()
                event = parse_client_event(message.data)
            except ProtocolError as exc:
                session.error(exc)
                continue
            await session.handle(event)
        elif message.type == WSMsgType.BINARY:
            session.error(ProtocolError("events are JSON text frames, not binary",
                                        "invalid_event"))
        elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                              WSMsgType.ERROR):
            return None


class Outbox:
    """Server events for the writer; bounded in count and in bytes, so a client that
    sends and never reads cannot fill the daemon's memory."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.bytes = 0
        self.dropped = 0

    def put(self, text: str) -> None:
        if self.queue.qsize() >= MAX_QUEUED_EVENTS or self.bytes + len(text) > MAX_QUEUED_BYTES:
            self.dropped += 1
            return
        self.bytes += len(text)
        self.queue.put_nowait(text)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def get(self) -> str | None:
        text = await self.queue.get()
        if text is not None:
            self.bytes -= len(text)
        return text


async def pump_audio(session: RealtimeSession) -> None:
    """Read the reply audio in real time (20 ms frames, as the WebRTC track does, so that
    barge-in and the heard text work alike) and send it as the playing response's
    audio deltas."""
    pacer = FramePacer()
    core = session.call.core
    while True:
        await pacer.next_pts()
        before = core.speaking
        frame = session.call.output.next_frame()  # may start or end a reply
        session.send_frame(frame, core.speaking if core.speaking is not None else before)


async def _write(ws: web.WebSocketResponse, outbox: Outbox) -> None:
    while (text := await outbox.get()) is not None:
        if ws.closed:
            return
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return


async def close_sessions(app: web.Application) -> None:
    for ws in list(app[SESSIONS]):
        with contextlib.suppress(Exception):
            await ws.close(code=1001, message=b"server shutting down")


def add_realtime_routes(app: web.Application) -> None:
    """The Realtime API's routes on the daemon's app (build_app calls this)."""
    from voxlive.realtime.calls import PRESETS, Presets, client_secrets, realtime_call

    app[SESSIONS] = daemon_of_app(app).sockets  # counted in the daemon's live calls
    app[PRESETS] = Presets()
    app.router.add_get("/v1/realtime", realtime_socket)
    app.router.add_post("/v1/realtime/calls", realtime_call)
    app.router.add_post("/v1/realtime/client_secrets", client_secrets)
    app.on_shutdown.insert(0, close_sessions)
