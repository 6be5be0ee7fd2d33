"""The daemon's HTTP side: the page, `POST /offer` signalling, `/config`, `/healthz`.

Who may call is voxlive/server/auth.py (API keys, call tokens from `POST /token`,
Origin and Host checks), applied to every route by its middleware.

Signalling contract (any WebRTC client can call): POST /offer with JSON
{"sdp": ..., "type": "offer"}; the answer is JSON {"sdp": ..., "type": "answer"}.
Errors are JSON {"error": message} with a 4xx/5xx status. The client opens a data
channel labelled `events` for JSON events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.realtime.ws import add_realtime_routes
from voxlive.server.auth import (
    AUTH,
    PRINCIPAL,
    AuthPolicy,
    Principal,
    auth_middleware,
    issue_token,
)
from voxlive.server.ice import (
    apply_host_policy,
    filter_remote_candidates,
    is_loopback,
    rtc_configuration,
)
from voxlive.server.metrics import Metrics
from voxlive.session import CallSession
from voxlive.transports.webrtc import OutputAudioTrack, pump_input, pump_video

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 128 * 1024
MAX_QUEUED_EVENTS = 256
WEB_DIR = Path(str(resources.files("voxlive") / "web"))


@dataclass
class Call:
    call_id: str
    pc: RTCPeerConnection
    session: CallSession
    metrics: Metrics
    channel: RTCDataChannel | None = None
    queued: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Another protocol on the same call path (the Realtime API, voxlive/realtime/calls.py):
    channel_label: str = "events"
    on_message: Callable[[str], None] | None = None
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def send_event(self, event: dict[str, Any]) -> None:
        self.metrics.observe_event(event)
        text = json.dumps(event)
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(text)
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
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        (self.on_message or self.session.handle_client_message)(message)


class OfferError(ValueError):
    pass


class Daemon:
    """Holds the shared models and the live calls; one per process."""

    def __init__(self, config: VoxliveConfig, profile_name: str, models: Models,
                 host: str, kiosk: bool = False, owns_models: bool = False,
                 auth: AuthPolicy | None = None):
        self.config = config
        self.profile_name = profile_name
        self.models = models
        self.host = host
        self.kiosk = kiosk
        self.owns_models = owns_models  # close them on shutdown (others may share them)
        self.calls: dict[str, Call] = {}
        self.metrics = Metrics()
        self.vad_threshold = config.profile(profile_name).vad.threshold
        server = config.server
        self.auth = auth or AuthPolicy.from_settings(
            host, server.api_keys, server.metrics_keys, server.allowed_origins,
            server.allowed_hosts, server.call_token_ttl_s, server.allow_unauthenticated)
        apply_host_policy(host)

    # --- signalling -------------------------------------------------------------------

    async def answer(self, body: Any, open_session: Callable[[Call], CallSession] | None = None
                     ) -> RTCSessionDescription:
        """The answer to an offer; `open_session` makes the call's session (default: a
        CallSession speaking voxlive's events)."""
        offer = self._parse_offer(body)
        if len(self.calls) >= self.config.server.max_calls:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": "too many calls; try again later"}),
                content_type="application/json",
            )
        call_id = uuid.uuid4().hex[:12]
        pc = RTCPeerConnection(rtc_configuration(self.config.server.ice_servers))
        call = Call(call_id, pc, session=None, metrics=self.metrics)  # type: ignore[arg-type]
        call.session = CallSession(
            self.models, self.config, self.vad_threshold, call.send_event, call_id
        ) if open_session is None else open_session(call)
        self.calls[call_id] = call
        try:
            await self._connect(call, offer)
        except Exception:
            await self.hang_up(call_id)
            raise
        self.metrics.call_started()
        if open_session is None:
            call.send_event({"type": "ready", "call_id": call_id, "profile": self.profile_name})
            call.send_event({"type": "state", "state": call.session.core.state.value})
        return pc.localDescription

    def _parse_offer(self, body: Any) -> RTCSessionDescription:
        if not isinstance(body, dict):
            raise OfferError('the body must be a JSON object {"sdp": ..., "type": "offer"}')
        sdp, kind = body.get("sdp"), body.get("type")
        if kind != "offer":
            raise OfferError(f'"type" must be "offer", got {kind!r}')
        if not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise OfferError('"sdp" must be an SDP offer (text starting with "v=0")')
        if "m=audio" not in sdp:
            raise OfferError("the offer has no audio: add a microphone track")
        sdp = filter_remote_candidates(sdp, loopback_only=is_loopback(self.host))
        return RTCSessionDescription(sdp=sdp, type="offer")

    async def _connect(self, call: Call, offer: RTCSessionDescription) -> None:
        pc = call.pc

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == call.channel_label:
                call.attach_channel(channel)

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                work = pump_input(track, call.session)
            else:
                work = pump_video(track, call.session)
            task = asyncio.ensure_future(work)
            call.tasks.add(task)
            task.add_done_callback(call.tasks.discard)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("call %s: %s", call.call_id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.hang_up(call.call_id)

        try:
            await pc.setRemoteDescription(offer)
        except Exception as exc:
            raise OfferError(f"the offer could not be used: {exc}") from exc
        pc.addTrack(OutputAudioTrack(call.session.output))
        await pc.setLocalDescription(await pc.createAnswer())

    async def hang_up(self, call_id: str) -> None:
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        await call.session.close()
        for close in call.on_close:
            await close()
        for task in list(call.tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await call.pc.close()

    async def close(self) -> None:
        for call_id in list(self.calls):
            await self.hang_up(call_id)
        if self.owns_models:
            await self.models.aclose()


# --- HTTP -------------------------------------------------------------------------------

DAEMON = web.AppKey("daemon", Daemon)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def offer(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        return _error(413, f"offer too large (limit {MAX_OFFER_BYTES} bytes)")
    try:
        body = json.loads(await request.text())
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"offer too large (limit {MAX_OFFER_BYTES} bytes)")
    except (ValueError, UnicodeDecodeError):
        return _error(400, 'the body is not JSON; send {"sdp": ..., "type": "offer"}')
    who: Principal = request[PRINCIPAL]
    if who.kind == "token" and not request.app[AUTH].tokens.consume(who.token or ""):
        return _error(403, "the call token was already used")  # single use
    try:
        answer = await request.app[DAEMON].answer(body)
    except OfferError as exc:
        return _error(400, str(exc))
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


async def client_config(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    # TURN credentials only to a caller with a key or a call token.
    secret = None if request[PRINCIPAL].authenticated else {"username", "credential"}
    return web.json_response({
        "ice_servers": [s.model_dump(exclude_none=True, exclude=secret)
                        for s in daemon.config.server.ice_servers],
        "profile": daemon.profile_name,
        "kiosk": daemon.kiosk,
    })


async def healthz(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    models = daemon.models
    return web.json_response({
        "status": "ok",
        "profile": daemon.profile_name,
        "calls": len(daemon.calls),
        "models": {stage: getattr(models, stage).description
                   for stage in ("vad", "stt", "llm", "tts", "vision", "emotion")
                   if getattr(models, stage, None) is not None},
    })


async def metrics(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.Response(text=daemon.metrics.render(len(daemon.calls)),
                        content_type="text/plain", charset="utf-8")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


def build_app(daemon: Daemon) -> web.Application:
    app = web.Application(client_max_size=MAX_OFFER_BYTES, middlewares=[auth_middleware])
    app[DAEMON] = daemon
    app[AUTH] = daemon.auth
    app.router.add_get("/", index)
    app.router.add_post("/offer", offer)
    app.router.add_post("/token", issue_token)
    app.router.add_get("/config", client_config)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", WEB_DIR)
    add_realtime_routes(app)  # the OpenAI Realtime API (voxlive/realtime)

    async def on_shutdown(app: web.Application) -> None:
        await app[DAEMON].close()

    app.on_shutdown.append(on_shutdown)
    return app


@contextlib.asynccontextmanager
async def running(daemon: Daemon, port: int = 0) -> Any:
    """Serve `daemon` on its host inside a running loop (benchmarks, tests); yields the URL."""
    runner = web.AppRunner(build_app(daemon), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, daemon.host, port)
    await site.start()
    bound = runner.addresses[0][1]
    host = f"[{daemon.host}]" if ":" in daemon.host else daemon.host
    try:
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()
