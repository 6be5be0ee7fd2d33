"""The Realtime API over WebRTC: `POST /v1/realtime/calls`, and client secrets for browsers.

The offer comes as raw `application/sdp`, or as multipart/form-data with `sdp` and
`session` (the session's JSON, as in `session.update`). The answer is the SDP itself
(201, `application/sdp`) with the call's id in `Location`. The call goes the same way as
a voxlive call (Daemon.answer: the same ICE policy, tracks and audio pacing); only its
session is a RealtimeSession, whose events travel on the data channel `oai-events`
(the audio is the Opus track, so no audio deltas are sent there).

`POST /v1/realtime/client_secrets` (an API key, or none on a loopback daemon with no
keys) returns a short-lived, single-use secret a browser sends as its Bearer to
`/v1/realtime/calls`: the daemon's call token, with the session it was asked for.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from voxlive.realtime.config import SessionConfig
from voxlive.realtime.events import ProtocolError, new_id, parse_client_event
from voxlive.realtime.session import RealtimeSession
from voxlive.realtime.ws import daemon_of, refuse_if_full
from voxlive.server.guards import parse_json_body

CHANNEL = "oai-events"
MAX_PRESETS = 10_000


class Presets:
    """Client secret -> the session JSON it was issued with, until the secret expires:
    a secret never used, or used for a WebSocket, must not hold its session forever."""

    def __init__(self, clock: Any = time.monotonic):
        self._clock = clock
        self._live: dict[str, tuple[float, dict[str, Any]]] = {}  # oldest first

    def put(self, token: str, session: dict[str, Any], ttl_s: float) -> None:
        now = self._clock()
        for old in [t for t, (expires, _) in self._live.items() if expires <= now]:
            del self._live[old]
        while len(self._live) >= MAX_PRESETS:
            del self._live[next(iter(self._live))]
        self._live[token] = (now + ttl_s, session)

    def take(self, token: str | None) -> dict[str, Any] | None:
        expires, session = self._live.pop(token or "", (0.0, None))
        return session if expires > self._clock() else None

    def __len__(self) -> int:
        return len(self._live)


PRESETS = web.AppKey("realtime_presets", Presets)


def _error(status: int, message: str, code: str = "invalid_request") -> web.Response:
    return web.json_response({"error": {"type": "invalid_request_error", "code": code,
                                        "message": message}}, status=status)


async def _read_offer(request: web.Request) -> tuple[str, dict[str, Any] | None]:
    from voxlive.server.app import MAX_OFFER_BYTES

    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        raise ProtocolError(f"offer too large (limit {MAX_OFFER_BYTES} bytes)")
    session: dict[str, Any] | None = None
    if request.content_type.startswith("multipart/"):
        sdp = ""
        reader = await request.multipart()
        async for part in reader:
            if part.name == "sdp":
                sdp = await part.text()
            elif part.name == "session":
                try:
                    session = parse_json_body(await part.text())
                except ValueError:
                    raise ProtocolError("the 'session' part is not JSON", param="session") \
                        from None
                if not isinstance(session, dict):
                    raise ProtocolError("the 'session' part is a JSON object", param="session")
    else:
        sdp = await request.text()
    if not sdp.startswith("v=0"):
        raise ProtocolError("send the SDP offer as application/sdp, or multipart with an "
                            "'sdp' part", param="sdp")
    return sdp, session


async def realtime_call(request: web.Request) -> web.Response:
    from voxlive.server.app import OfferError
    from voxlive.server.auth import authorize_call

    refuse_if_full(request)
    daemon = daemon_of(request)
    if not daemon.offer_rate.allow(request.remote or "?"):  # as POST /offer
        return _error(429, f"too many offers from this address (limit "
                      f"{daemon.limits.offers_per_minute} a minute)", "rate_limit_exceeded")
    try:
        sdp, session = await asyncio.wait_for(_read_offer(request), daemon.limits.body_timeout_s)
    except ProtocolError as exc:
        return _error(400, exc.message)
    except TimeoutError:
        return _error(408, f"the offer did not arrive within {daemon.limits.body_timeout_s:g} s",
                      "request_timeout")
    if (who := authorize_call(request)).kind == "token":  # a client secret: used up here
        preset = request.app[PRESETS].take(who.token)
        session = session or preset
    model = request.query.get("model", "voxlive")
    holder: dict[str, RealtimeSession] = {}

    def open_session(call: Any) -> Any:
        def send(event: dict[str, Any]) -> None:
            call.send_event({"event_id": new_id("event"), **event})

        realtime = RealtimeSession(daemon.models, daemon.config, daemon.vad_threshold, send,
                                   model=model, call_id=call.call_id, webrtc=True)
        if session is not None:
            realtime.settings.update(session)
            realtime.apply_settings()
        inbox: asyncio.Queue[str] = asyncio.Queue()

        async def consume() -> None:
            while True:
                text = await inbox.get()
                try:
                    event = parse_client_event(text)
                except ProtocolError as exc:
                    realtime.error(exc)
                    continue
                await realtime.handle(event)

        task = asyncio.get_running_loop().create_task(consume())
        call.tasks.add(task)
        call.channel_label = CHANNEL
        call.on_message = inbox.put_nowait
        call.on_close.append(realtime.close_extras)
        realtime.start()
        holder["session"] = realtime
        return realtime.call

    try:
        answer = await daemon.answer({"type": "offer", "sdp": sdp}, open_session)
    except (OfferError, ProtocolError) as exc:
        return _error(400, str(exc))
    call_id = holder["session"].call.call_id
    return web.Response(status=201, text=answer.sdp, content_type="application/sdp",
                        headers={"Location": f"/v1/realtime/calls/{call_id}"})


async def client_secrets(request: web.Request) -> web.Response:
    from voxlive.server.auth import AUTH, PRINCIPAL

    policy = request.app[AUTH]
    who = request.get(PRINCIPAL)
    if policy.required and (who is None or who.kind != "key"):
        return _error(401, "an API key is needed to make client secrets", "invalid_api_key")
    limit = daemon_of(request).limits.body_timeout_s
    try:
        body = parse_json_body(await asyncio.wait_for(request.text(), limit) or "{}")
    except TimeoutError:
        return _error(408, f"the body did not arrive within {limit:g} s", "request_timeout")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the body is not JSON")
    session = body.get("session") if isinstance(body, dict) else None
    if session is not None and not isinstance(session, dict):
        return _error(400, "'session' must be an object")
    probe = SessionConfig(id=new_id("sess"))  # checks the secret's session
    try:
        probe.update(session or {})
    except ProtocolError as exc:
        return _error(400, exc.message)
    token = policy.tokens.issue()
    if session:
        request.app[PRESETS].put(token, session, policy.tokens.ttl_s)
    expires = int(time.time() + policy.tokens.ttl_s)
    return web.json_response({"value": token, "expires_at": expires,
                              "session": probe.as_json()})
