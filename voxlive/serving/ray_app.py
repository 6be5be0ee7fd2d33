"""`voxlive serve-models --ray`: the model stages as Ray Serve deployments.

One deployment per stage, with the config's replicas, CPUs and (fractional) GPUs per
replica: STT, emotion and vision batch concurrent requests with @serve.batch (a few ms of
batch wait, set from the config); TTS streams each request's pcm from a generator, and a
closed HTTP stream cancels it there (Serve cancels the request, the generator's
CancelledError sets the engine's stop flag, synthesis stops at its next chunk). An
ingress deployment speaks the same HTTP as local_app.py (wire.py), so a daemon cannot
tell the two apart. Replicas load the profile's models with voxlive's own loader.

    ray start --head ...; voxlive serve-models --ray --config models.yaml ...
    serve run voxlive.serving.ray_app:app_builder serve_config=deploy/serve-models.yaml
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from voxlive.backends.tts_stream import speech_chunks
from voxlive.serving import wire
from voxlive.serving.access import ModelServerAccess
from voxlive.serving.config import ServeModelsConfig, load_serve_config
from voxlive.serving.engines import load_engine

BATCH_HEADER = "X-Voxlive-Batch-Size"
METHODS = {"stt": "recognise", "emotion": "analyse", "vision": "describe"}


def _error(status: int, message: str, kind: str = "server_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}},
                        status_code=status)


@serve.deployment
class BatchedStage:
    """STT, emotion or vision: concurrent requests (from any daemon) run as one batch."""

    def __init__(self, stage: str, profile: Any, max_batch_size: int, batch_wait_s: float):
        self.stage = stage
        self.engine = load_engine(stage, profile)
        self.run_batch = getattr(self.engine, METHODS[stage])
        self.run.set_max_batch_size(max_batch_size)
        self.run.set_batch_wait_timeout_s(batch_wait_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def run(self, items: list[Any]) -> list[tuple[Any, int]]:
        results = await asyncio.to_thread(self.run_batch, items)
        return [(result, len(items)) for result in results]

    def describe(self) -> str:
        return self.engine.description

    def stats(self) -> dict[str, Any]:
        return {**self.engine.stats(), "pid": os.getpid()}  # which replica answered


@serve.deployment
class SpeechStage:
    """TTS: one streamed synthesis per request (piper speaks one sentence at a time)."""

    def __init__(self, profile: Any, rate: int):
        self.engine = load_engine("tts", profile, rate)

    async def speak(self, text: str, style: str) -> Any:
        async for chunk in speech_chunks(self.engine, text, style):  # cancelled: stop set
            yield chunk

    def describe(self) -> str:
        return self.engine.description

    def stats(self) -> dict[str, Any]:
        return {**self.engine.stats(), "pid": os.getpid()}


@serve.deployment
class Ingress:
    """The HTTP face: routes by path to the stage deployments."""

    def __init__(self, stages: dict[str, Any], rate: int, access: ModelServerAccess):
        self.stages = stages  # stage -> DeploymentHandle
        self.rate = rate
        self.access = access

    async def __call__(self, request: Request) -> Response:
        path, method = request.url.path.rstrip("/"), request.method
        refusal = self.access.refusal(path, request.headers.get("authorization"))
        if refusal is not None:
            return JSONResponse(refusal.body(), status_code=refusal.status)
        try:
            if method == "POST" and path == "/v1/audio/transcriptions" and "stt" in self.stages:
                return await self._transcribe(request)
            if method == "POST" and path == "/v1/audio/speech" and "tts" in self.stages:
                return await self._speech(request)
            for stage in ("emotion", "vision"):
                if method == "POST" and path == f"/v1/{stage}" and stage in self.stages:
                    return await self._json_stage(request, stage)
            if method == "GET" and path == "/v1/stats":
                return JSONResponse(await self._stats())
            if method == "GET" and path == "/v1/models":
                return JSONResponse(await self._models())
            if method == "GET" and path == "/healthz":
                return JSONResponse({"status": "ok", "stages": sorted(self.stages)})
        except wire.WireError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return _error(404, f"no route {method} {path}", "invalid_request_error")

    async def _transcribe(self, request: Request) -> Response:
        audio, fmt = await asyncio.to_thread(wire.transcription_request, await request.body(),
                                             request.headers.get("content-type", ""))
        try:
            transcript, size = await self.stages["stt"].run.remote(audio)
        except Exception as exc:  # a replica that died, a model that failed
            return _error(500, f"stt failed: {type(exc).__name__}: {exc}")
        body, content_type = wire.transcription_answer(
            transcript.text, transcript.confidence, audio.size / 16_000, fmt)
        return Response(body, media_type=content_type, headers={BATCH_HEADER: str(size)})

    async def _speech(self, request: Request) -> Response:
        spoken = wire.speech_request(await request.body())
        stream = self.stages["tts"].options(stream=True).speak.remote(spoken.text, spoken.style)
        try:  # the first chunk before the headers: a failure is still a proper HTTP error
            first = await stream.__anext__()
        except StopAsyncIteration:
            first = b""
        except Exception as exc:
            return _error(500, f"tts failed: {type(exc).__name__}: {exc}")

        async def body() -> Any:
            try:
                yield first
                async for chunk in stream:  # a replica dying mid-stream cuts the response
                    yield chunk
            finally:
                stream.cancel()  # the client closed the stream: stop the synthesis

        return StreamingResponse(body(), media_type="audio/pcm",
                                 headers={"X-Sample-Rate": str(self.rate)})

    async def _json_stage(self, request: Request, stage: str) -> Response:
        item = await asyncio.to_thread(wire.decoded_upload, await request.body(),
                                       request.headers.get("content-type", ""), stage)
        try:
            result, size = await self.stages[stage].run.remote(item)
        except Exception as exc:
            return _error(500, f"{stage} failed: {type(exc).__name__}: {exc}")
        return JSONResponse(result, headers={BATCH_HEADER: str(size)})

    async def _stats(self) -> dict[str, Any]:
        """One replica's counts per stage (with several replicas: whichever answers)."""
        return {stage: await handle.stats.remote() for stage, handle in self.stages.items()}

    async def _models(self) -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": stage, "object": "model", "owned_by": "voxlive",
             "description": await handle.describe.remote()}
            for stage, handle in self.stages.items()]}


def build_app(config: ServeModelsConfig, profile: Any,
              access: ModelServerAccess | None = None) -> Any:
    """The bound application: the stage deployments and the ingress in front of them
    (`access`: by default the config's, judged by its host)."""
    access = access or ModelServerAccess.from_config(config)
    stages: dict[str, Any] = {}
    for stage in config.stages():
        settings = getattr(config, stage)
        options = {"name": f"voxlive-{stage}", "num_replicas": settings.replicas,
                   "max_ongoing_requests": settings.max_ongoing_requests,
                   "ray_actor_options": {"num_cpus": settings.num_cpus,
                                         "num_gpus": settings.num_gpus}}
        if stage == "tts":
            stages[stage] = SpeechStage.options(**options).bind(profile, config.speech_rate)
        else:
            stages[stage] = BatchedStage.options(**options).bind(
                stage, profile, settings.max_batch_size, settings.batch_wait_ms / 1000)
    ingress = Ingress.options(name="voxlive-ingress", num_replicas=1,
                              ray_actor_options={"num_cpus": 0})
    return ingress.bind(stages, config.speech_rate, access)


def app_builder(args: dict[str, str]) -> Any:
    """For `serve run voxlive.serving.ray_app:app_builder serve_config=F models=F` and
    KubeRay's RayService (import_path): the app from the two config files."""
    from voxlive.config import load_config

    config = load_serve_config(args.get("serve_config"))
    models = load_config(args.get("models"))
    # Ray Serve listens where the cluster says (KubeRay: every address of the pod).
    access = ModelServerAccess.from_config(config, beyond_loopback=True)
    return build_app(config, models.profile(config.profile), access)


def run(config: ServeModelsConfig, profile: Any, address: str | None = None,
        blocking: bool = True) -> str:
    """Start (or join) a Ray cluster, deploy, and serve on the config's host and port;
    returns the base URL (…/v1). Blocks until Ctrl-C when `blocking`."""
    import ray  # (for a one-node cluster, config.ray_loopback_only() ran before the import)

    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:  # a one-node cluster on this machine, on loopback
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1")
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(build_app(config, profile), name="voxlive", route_prefix="/", blocking=False)
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{config.port}/v1"
    if blocking:
        print(f"voxlive serve-models (Ray Serve): {', '.join(config.stages())} on {url}",
              flush=True)
        import signal
        import threading

        stop = threading.Event()  # Ctrl-C, or SIGTERM from systemd, docker or Kubernetes
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        print("voxlive serve-models: stopping the deployments", flush=True)
        serve.shutdown()
    return url
