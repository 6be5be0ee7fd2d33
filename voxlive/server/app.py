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
import logging
import signal
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.events import CallEnded, ErrorEvent, Ready, StateEvent
from voxlive.realtime.ws import add_realtime_routes
from voxlive.server.auth import (
    AUTH,
    PRINCIPAL,
    AuthPolicy,
    auth_middleware,
    authorize_call,
    issue_token,
    json_error,
)
from voxlive.server.call import Call
from voxlive.server.call_guard import (
    GuardedTrack,
    harden_data_channels,
    pump_guarded,
    watch_call,
)
from voxlive.server.connections import GUARDS, guard_middleware, install
from voxlive.server.guards import (
    OfferRefused,
    RateLimiter,
    check_offer_sdp,
    json_errors,
    parse_json_body,
)
from voxlive.server.health import (
    FULL_RETRY_AFTER_S,
    LoopLag,
    health_report,
    open_fds,
    os_threads,
)
from voxlive.server.ice import (
    apply_host_policy,
    filter_remote_candidates,
    is_loopback,
    rtc_configuration,
)
from voxlive.server.load_gauges import daemon_started, load_gauges
from voxlive.server.metrics import Metrics
from voxlive.session import CallSession
from voxlive.transports.rtp_receive import pass_through_audio
from voxlive.transports.webrtc import OutputAudioTrack, pump_input, pump_video

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 128 * 1024
STUCK_GRACE_S = 5.0
"""A call still connecting this long past its deadline is a stuck slot (/healthz 503)."""
WEB_DIR = Path(str(resources.files("voxlive") / "web"))


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
        self.sockets: set[Any] = set()  # Realtime API WebSocket sessions: slots too
        self.metrics = Metrics()
        self.vad_threshold = config.profile(profile_name).vad.threshold
        server = config.server
        self.auth = auth or AuthPolicy.from_settings(
            host, server.api_keys, server.metrics_keys, server.allowed_origins,
            server.allowed_hosts, server.call_token_ttl_s, server.allow_unauthenticated)
        self.limits = server.limits
        self.offer_rate = RateLimiter(self.limits.offers_per_minute, per_s=60.0)
        self.loop_lag = LoopLag()
        apply_host_policy(host)
        harden_data_channels()

    def live_calls(self) -> int:
        """Calls holding a slot: ended ones never count (they are being torn down); a
        Realtime WebSocket session holds one as a WebRTC call does."""
        return len(self.sockets) + sum(1 for call in self.calls.values() if call.ended is None)

    def stuck_calls(self) -> int:
        """Calls still not connected well past their deadline: the watchdog failed."""
        late = self.limits.connect_timeout_s + STUCK_GRACE_S
        t = time.monotonic()
        return sum(1 for call in self.calls.values()
                   if call.clock.connected is None and t - call.clock.started > late)

    # --- signalling -------------------------------------------------------------------

    async def answer(self, body: Any, open_session: Callable[[Call], CallSession] | None = None
                     ) -> RTCSessionDescription:
        """The answer to an offer; `open_session` makes the call's session (default: a
        CallSession speaking voxlive's events)."""
        offer = self._parse_offer(body)
        if self.live_calls() >= self.config.server.max_calls:
            raise json_error(web.HTTPServiceUnavailable, "too many calls; try again later")
        call_id = uuid.uuid4().hex[:12]
        pc = RTCPeerConnection(rtc_configuration(self.config.server.ice_servers))
        call = Call(call_id, pc, session=None, metrics=self.metrics,  # type: ignore[arg-type]
                    limits=self.limits)
        call.session = CallSession(
            self.models, self.config, self.vad_threshold, call.send_event, call_id
        ) if open_session is None else open_session(call)
        self.calls[call_id] = call
        try:
            await self._connect(call, offer)
        except Exception:
            await self.hang_up(call_id)
            raise
        self._keep(call, watch_call(call.clock, lambda: pc.connectionState, self.limits,
                                    lambda reason: self.hang_up(call_id, reason)))
        self.metrics.call_started()
        if open_session is None:
            call.send_event(Ready(call_id, self.profile_name).to_dict())
            call.send_event(StateEvent(call.session.core.state.value).to_dict())
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
        try:
            check_offer_sdp(sdp, self.limits)
        except OfferRefused as exc:
            raise OfferError(str(exc)) from exc
        sdp = filter_remote_candidates(sdp, loopback_only=is_loopback(self.host))
        return RTCSessionDescription(sdp=sdp, type="offer")

    async def _connect(self, call: Call, offer: RTCSessionDescription) -> None:
        pc = call.pc

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            call.channels_opened += 1
            if call.channels_opened > self.limits.max_data_channels:
                channel.close()  # one events channel is all a call needs
            elif channel.label == call.channel_label and call.channel is None:
                call.attach_channel(channel)

        @pc.on("track")
        def on_track(track: Any) -> None:
            guarded = GuardedTrack(track, self.limits, call.clock)
            if track.kind == "audio":
                work = pump_guarded(lambda t: pump_input(t, call.session), guarded,
                                    lambda why: self.hang_up(call.call_id, why))
            else:
                work = pump_guarded(lambda t: pump_video(t, call.session), guarded,
                                    lambda why: self.hang_up(call.call_id, why))
            self._keep(call, work)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("call %s: %s", call.call_id, pc.connectionState)
            if pc.connectionState == "failed":  # ICE or DTLS failed: end it with a reason
                await self.hang_up(call.call_id, "the connection failed")
            elif pc.connectionState == "closed":
                await self.hang_up(call.call_id)

        try:
            await pc.setRemoteDescription(offer)
            pass_through_audio(pc)  # the caller's audio to the VAD without a jitter wait
            pc.addTrack(OutputAudioTrack(call.session.output))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise OfferError(f"the offer could not be used: {str(exc)[:300]}") from exc

    @staticmethod
    def _keep(call: Call, work: Any) -> None:
        """Run `work` as one of the call's tasks (cancelled when it hangs up)."""
        task = asyncio.ensure_future(work)
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)

    async def hang_up(self, call_id: str, reason: str | None = None) -> None:
        """End a call; with a `reason` (a limit, a fault) the client is told first."""
        call = self.calls.get(call_id)
        if call is None or call.ended is not None:
            return
        call.ended = reason or "hung up"
        if reason is not None:
            log.info("call %s ended: %s", call_id, reason)
            call.send_event(ErrorEvent(reason, "call").to_dict())
            call.send_event(CallEnded(reason).to_dict())
            await asyncio.sleep(0.05)  # let the events go out before the channel closes
        self.calls.pop(call_id, None)
        await call.session.close()
        current = asyncio.current_task()
        for close in call.on_close:
            await close()
        for task in list(call.tasks):
            if task is not current:  # the watchdog or a pump may be the one hanging up
                task.cancel()
        with contextlib.suppress(Exception):
            await call.pc.close()

    async def close(self) -> None:
        for call_id in list(self.calls):
            await self.hang_up(call_id)
        await self.loop_lag.stop()
        if self.owns_models:
            await self.models.aclose()


# --- HTTP -------------------------------------------------------------------------------

DAEMON = web.AppKey("daemon", Daemon)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def offer(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        return _error(413, f"offer too large (limit {MAX_OFFER_BYTES} bytes)")
    if request.content_type != "application/json":
        # A cross-site page can POST text/plain without a CORS preflight; JSON it cannot.
        return _error(415, 'send the offer as Content-Type: application/json')
    if not daemon.offer_rate.allow(request.remote or "?"):
        return _error(429, f"too many offers from this address (limit "
                      f"{daemon.limits.offers_per_minute} a minute)")
    try:
        text = await asyncio.wait_for(request.text(), daemon.limits.body_timeout_s)
        body = parse_json_body(text)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"offer too large (limit {MAX_OFFER_BYTES} bytes)")
    except TimeoutError:
        return _error(408, f"the offer did not arrive within {daemon.limits.body_timeout_s:g} s")
    except (ValueError, UnicodeDecodeError):
        return _error(400, 'the body is not JSON; send {"sdp": ..., "type": "offer"}')
    authorize_call(request)  # a call token is used up here
    try:
        answer = await daemon.answer(body)
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
    """503 when the daemon cannot take a call it should (a deploy's timer restarts it) or is
    full (a balancer routes around it); `?live=1`: liveness only (voxlive/server/health.py)."""
    body, status = health_report(request.app[DAEMON], live_only="live" in request.query)
    headers = {"Retry-After": str(FULL_RETRY_AFTER_S)} if body["status"] == "full" else None
    return web.json_response(body, status=status, headers=headers)


async def metrics(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    gauges = {"loop_lag_seconds": daemon.loop_lag.lag_s, "threads": os_threads(),
              "python_threads": threading.active_count(),
              "open_fds": open_fds(), "stuck_calls": daemon.stuck_calls(),
              **load_gauges(daemon.models)}
    for guard in request.app[GUARDS]:
        gauges.update({f"http_connections_{k}": v for k, v in guard.stats().items()})
    return web.Response(text=daemon.metrics.render(daemon.live_calls(), gauges),
                        content_type="text/plain", charset="utf-8")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


def build_app(daemon: Daemon) -> web.Application:
    app = web.Application(client_max_size=MAX_OFFER_BYTES,
                          middlewares=[json_errors, guard_middleware, auth_middleware])
    app[DAEMON] = daemon
    app[AUTH] = daemon.auth
    app[GUARDS] = []
    app.router.add_get("/", index)
    app.router.add_post("/offer", offer)
    app.router.add_post("/token", issue_token)
    app.router.add_get("/config", client_config)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", WEB_DIR)
    add_realtime_routes(app)  # the OpenAI Realtime API (voxlive/realtime)

    async def on_startup(app: web.Application) -> None:
        app[DAEMON].loop_lag.start()  # /healthz and /metrics report the loop's lag
        daemon_started()  # and the collector's pauses; the start-up heap frozen

    async def on_shutdown(app: web.Application) -> None:
        await app[DAEMON].close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def start_site(daemon: Daemon, port: int, ssl_context: ssl.SSLContext | None = None
                     ) -> tuple[web.AppRunner, int]:
    """Serve `daemon` on its host behind the connection guard; returns the runner and port."""
    limits = daemon.limits
    runner = web.AppRunner(build_app(daemon), access_log=None,
                           keepalive_timeout=limits.keepalive_timeout_s)
    await runner.setup()
    install(runner, limits.max_connections, limits.header_timeout_s)
    site = web.TCPSite(runner, daemon.host, port, ssl_context=ssl_context)
    await site.start()
    return runner, runner.addresses[0][1]


@contextlib.asynccontextmanager
async def running(daemon: Daemon, port: int = 0, ssl_context: ssl.SSLContext | None = None
                  ) -> Any:
    """Serve `daemon` on its host inside a running loop (benchmarks, tests); yields the URL."""
    runner, bound = await start_site(daemon, port, ssl_context)
    host = f"[{daemon.host}]" if ":" in daemon.host else daemon.host
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://{host}:{bound}"
    finally:
        await runner.cleanup()


async def serve_forever(daemon: Daemon, port: int, ssl_context: ssl.SSLContext | None = None
                        ) -> None:
    """`voxlive serve`: until SIGTERM or Ctrl-C, then the calls end and models close."""
    runner, _ = await start_site(daemon, port, ssl_context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The daemon's own TLS (browsers grant the microphone only on https or localhost)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
