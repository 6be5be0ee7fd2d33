"""`voxlive serve-models` on one machine, without Ray: one aiohttp process.

The same engines and wire format as the Ray Serve deployments (ray_app.py), with
MicroBatcher for the dynamic batching: for one machine, or a CI without a cluster.
Routes: POST /v1/audio/transcriptions, POST /v1/audio/speech (streamed pcm),
POST /v1/emotion, POST /v1/vision, GET /v1/models, GET /v1/stats, GET /healthz.

Exposed as the daemon is, it is guarded as the daemon is: API keys beyond loopback
(access.py), the daemon's connection cap and header deadline (server/connections.py),
a deadline for each request body, and uploads decoded in a worker thread (a 25 MB body
takes about a second to parse and decode; the loop streams every daemon's speech).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from voxlive.backends.tts_stream import speech_chunks
from voxlive.config.limits import ServerLimits
from voxlive.server.connections import GUARDS, guard_middleware, install
from voxlive.serving import wire
from voxlive.serving.access import ModelServerAccess
from voxlive.serving.batcher import MicroBatcher
from voxlive.serving.config import ServeModelsConfig

BATCH_HEADER = "X-Voxlive-Batch-Size"
"""Each answer says how many requests shared its batch (the tests and benchmarks read it)."""
ENGINES = web.AppKey("engines", dict)
BATCHERS = web.AppKey("batchers", dict)
ACCESS = web.AppKey("access", ModelServerAccess)
LIMITS = ServerLimits()
"""The daemon's HTTP limits (connections, header and body deadlines) serve here too."""


def json_error(error: wire.WireError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


async def read_body(request: web.Request) -> bytes:
    """The request's body (aiohttp caps its size), within the body deadline."""
    try:
        return await asyncio.wait_for(request.read(), LIMITS.body_timeout_s)
    except TimeoutError:
        raise wire.WireError(408, f"the request body took over {LIMITS.body_timeout_s:g} s"
                             ) from None


@web.middleware
async def access_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    refusal = request.app[ACCESS].refusal(request.path, request.headers.get("Authorization"))
    if refusal is not None:
        return json_error(refusal)
    return await handler(request)


def server_error(stage: str, exc: BaseException) -> web.Response:
    message = f"{stage} failed: {type(exc).__name__}: {exc}"
    return web.json_response({"error": {"message": message, "type": "server_error",
                                        "code": 500}}, status=500)


async def transcriptions(request: web.Request) -> web.Response:
    try:
        audio, fmt = await asyncio.to_thread(wire.transcription_request, await read_body(request),
                                             request.headers.get("Content-Type", ""))
    except wire.WireError as exc:
        return json_error(exc)
    try:
        transcript, size = await request.app[BATCHERS]["stt"].submit(audio)
    except Exception as exc:
        return server_error("stt", exc)
    body, content_type = wire.transcription_answer(
        transcript.text, transcript.confidence, audio.size / 16_000, fmt)
    return web.Response(body=body, content_type=content_type, headers={BATCH_HEADER: str(size)})


async def speech(request: web.Request) -> web.StreamResponse:
    try:
        spoken = wire.speech_request(await read_body(request))
    except wire.WireError as exc:
        return json_error(exc)
    engine = request.app[ENGINES]["tts"]
    chunks = speech_chunks(engine, spoken.text, spoken.style)
    try:  # the first chunk before the headers: a failure is still a proper HTTP error
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except Exception as exc:
        return server_error("tts", exc)
    response = web.StreamResponse(headers={"Content-Type": "audio/pcm",
                                           "X-Sample-Rate": str(engine.rate)})
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    except ConnectionResetError:
        return response  # the client closed the stream: speech_chunks stopped the synthesis
    finally:
        await chunks.aclose()
    await response.write_eof()
    return response


async def _json_stage(request: web.Request, stage: str) -> web.Response:
    try:
        body, kind = await read_body(request), request.headers.get("Content-Type", "")
        item = await asyncio.to_thread(wire.decoded_upload, body, kind, stage)
    except wire.WireError as exc:
        return json_error(exc)
    try:
        result, size = await request.app[BATCHERS][stage].submit(item)
    except Exception as exc:
        return server_error(stage, exc)
    return web.json_response(result, headers={BATCH_HEADER: str(size)})


async def emotion(request: web.Request) -> web.Response:
    return await _json_stage(request, "emotion")


async def vision(request: web.Request) -> web.Response:
    return await _json_stage(request, "vision")


async def models(request: web.Request) -> web.Response:
    engines = request.app[ENGINES]
    return web.json_response({"object": "list", "data": [
        {"id": stage, "object": "model", "owned_by": "voxlive",
         "description": engine.description} for stage, engine in engines.items()]})


async def stats(request: web.Request) -> web.Response:
    return web.json_response({stage: engine.stats()
                              for stage, engine in request.app[ENGINES].items()})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "stages": sorted(request.app[ENGINES])})


def build_app(engines: dict[str, Any], config: ServeModelsConfig,
              access: ModelServerAccess | None = None) -> web.Application:
    """The app around already loaded engines (a stage without an engine is not routed);
    `access` defaults to the config's (its keys read now)."""
    app = web.Application(client_max_size=wire.MAX_UPLOAD_BYTES + 2**16,
                          middlewares=[guard_middleware, access_middleware])
    app[ACCESS] = access or ModelServerAccess.from_config(config)
    app[GUARDS] = []
    app[ENGINES] = engines
    runs = {"stt": "recognise", "emotion": "analyse", "vision": "describe"}
    app[BATCHERS] = {
        stage: MicroBatcher(getattr(engines[stage], method), getattr(config, stage).max_batch_size,
                            getattr(config, stage).batch_wait_ms / 1000)
        for stage, method in runs.items() if stage in engines}
    routes = {"stt": ("/v1/audio/transcriptions", transcriptions),
              "tts": ("/v1/audio/speech", speech),
              "emotion": ("/v1/emotion", emotion), "vision": ("/v1/vision", vision)}
    for stage, (path, handler) in routes.items():
        if stage in engines:
            app.router.add_post(path, handler)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/stats", stats)
    app.router.add_get("/healthz", healthz)

    async def close_batchers(app: web.Application) -> None:
        for batcher in app[BATCHERS].values():
            await batcher.close()

    app.on_cleanup.append(close_batchers)
    return app


@contextlib.asynccontextmanager
async def serving(engines: dict[str, Any], config: ServeModelsConfig,
                  port: int | None = None) -> AsyncIterator[str]:
    """Serve inside a running loop (tests, benchmarks); yields the base URL (…/v1)."""
    runner = web.AppRunner(build_app(engines, config), access_log=None,
                           keepalive_timeout=LIMITS.keepalive_timeout_s)
    await runner.setup()
    install(runner, LIMITS.max_connections, LIMITS.header_timeout_s)
    site = web.TCPSite(runner, config.host, config.port if port is None else port)
    await site.start()
    bound = runner.addresses[0][1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    try:
        yield f"http://{host}:{bound}/v1"
    finally:
        await runner.cleanup()


async def serve_forever(engines: dict[str, Any], config: ServeModelsConfig) -> None:
    async with serving(engines, config) as url:
        print(f"voxlive serve-models: {', '.join(engines)} on {url}", flush=True)
        print(json.dumps({stage: e.description for stage, e in engines.items()}), flush=True)
        await asyncio.Event().wait()
