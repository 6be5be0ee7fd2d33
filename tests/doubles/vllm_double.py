"""VllmDouble: a TEST DOUBLE of vLLM's OpenAI-compatible server, for tests only.

It is not vLLM and runs no model. It answers like `vllm serve` does on the wire:

  * POST /v1/chat/completions with "stream": true sends server-sent events, each
    `data: {json}\\n\\n` with id, object "chat.completion.chunk", created, model and
    choices: first a delta {"role": "assistant", "content": ""}, then one content delta
    per word-ish token of the reply, then a chunk with finish_reason "stop", then (when
    stream_options.include_usage is true) a usage chunk with choices [], and finally
    `data: [DONE]\\n\\n`. Without "stream" it answers one chat.completion object.
  * An unknown model gets vLLM's 404: {"object": "error", "message": "The model `x` does
    not exist.", "type": "NotFoundError", "code": 404}.
  * GET /health answers 200 and GET /v1/models lists the one served model.
  * POST /v1/audio/transcriptions (multipart/form-data: file, model, language,
    response_format, temperature) transcribes FOR REAL, with the packaged faster-whisper
    tiny.en of the embedded profile (or the STT object passed as `stt`), so a test can
    speak a sentence and get its words back. It answers `json` ({"text": ...}),
    `verbose_json` (task, language, duration, text, segments with avg_logprob, as vLLM
    and OpenAI do) or `text`. With verbose_json=False it refuses verbose_json with a 400,
    like vLLM versions that only did `json` and `text`. The model it serves there is
    `stt_model`; another name gets the 404 above.
  * Failures on demand: `fail_status` answers every transcription with that HTTP status
    and a vLLM error body; `transcription_delay_s` waits before answering (a slow
    server); stop(), or a port from unused_base_url(), is a server that is down.

It listens on 127.0.0.1 only, on a port the OS picks. It records every request body in
`requests`, counts streams that the client abandoned by disconnecting (`aborted`, and
`abort_event` is set) and streams that finished (`completed`).

    async with VllmDouble(reply="Hello there.", token_delay_s=0.01) as server:
        server.base_url  # 'http://127.0.0.1:PORT/v1'

Run on its own, it stands in for `vllm serve MODEL --host H --port P` (what `voxlive
serve --spawn-llm` starts): `python -m tests.doubles.vllm_double MODEL --port N ...`;
see `main` for the options that simulate a slow start, an early exit and workers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web

from tests.doubles.http_double import HOST, HttpDouble

DEFAULT_MODEL = "double/test-model"
DEFAULT_STT_MODEL = "double/whisper-test"
DEFAULT_REPLY = "Hello! I am a test double of vLLM, and this is my streamed reply."

Reply = str | Callable[[list[dict[str, Any]]], str]
Delay = float | Callable[[int], float]
ToolScript = Callable[[list[dict[str, Any]], list[dict[str, Any]]],
                      list[tuple[str, Any]] | None]


def split_tokens(text: str) -> list[str]:
    """Word-ish tokens that join back to `text` exactly: 'Hi there' -> ['Hi', ' there']."""
    return re.findall(r"\s*\S+|\s+", text)


def unused_base_url() -> str:
    """A base_url on 127.0.0.1 where nothing listens (a port the OS just handed out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"http://{HOST}:{port}/v1"


class VllmDouble(HttpDouble):
    """Test double of vLLM's OpenAI-compatible chat server (see the module docstring).

    reply: the reply text, or a function of the request's messages that returns it.
    first_token_delay_s: wait between the role chunk and the first content chunk; a
        number, or a function of the request's index (0 for the first request).
    token_delay_s: wait between later content chunks.
    raw_stream: if given, sent verbatim as the body of every streamed answer (to test
        malformed streams) instead of the chunks above.
    tool_call: if given, a request that offers tools and ends with a user message is
        answered with a call of this tool (no content, finish_reason "tool_calls"), as
        vLLM does with --enable-auto-tool-choice.
    tool_script: a function of (messages, tools) of each request that offers tools,
        returning the calls to make as [(name, arguments dict or JSON text), ...]; an
        empty list (or None) answers with `reply` instead. Several calls are streamed as
        vLLM streams them: one delta per call index (name, then arguments in pieces).
    """

    def __init__(
        self,
        reply: Reply = DEFAULT_REPLY,
        *,
        model: str = DEFAULT_MODEL,
        first_token_delay_s: Delay = 0.0,
        token_delay_s: float = 0.0,
        raw_stream: bytes | None = None,
        tool_call: str | None = None,
        tool_script: ToolScript | None = None,
        stt: Any = None,
        stt_model: str = DEFAULT_STT_MODEL,
        verbose_json: bool = True,
        fail_status: int | None = None,
        transcription_delay_s: float = 0.0,
        host: str = HOST,
    ):
        super().__init__(host)
        self.reply = reply
        self.model = model
        self.first_token_delay_s = first_token_delay_s
        self.token_delay_s = token_delay_s
        self.raw_stream = raw_stream
        self.tool_call = tool_call
        self.tool_script = tool_script
        self.stt = stt  # anything with recognise(audio16k) -> Transcript; None: built on use
        self.stt_model = stt_model
        self.verbose_json = verbose_json
        self.fail_status = fail_status
        self.transcription_delay_s = transcription_delay_s
        self.transcriptions: list[dict[str, str]] = []  # the form fields of each request

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_get("/health", self._health)

    # --- handlers -----------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": self.model,
                        "parent": None,
                        "max_model_len": 4096,
                    }
                ],
            }
        )

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "BadRequestError", "the request body is not JSON")
        index = len(self.requests)
        self.requests.append(body)
        model = body.get("model")
        if model != self.model:
            return _error(404, "NotFoundError", f"The model `{model}` does not exist.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "BadRequestError", "messages must be a non-empty list")

        text = self.reply(messages) if callable(self.reply) else self.reply
        tokens = split_tokens(text)
        completion_id = f"chatcmpl-double{index}"
        created = int(time.time())
        prompt_tokens = sum(len(split_tokens(str(m.get("content", "")))) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": self.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            payload.update(extra)
            return f"data: {json.dumps(payload)}\n\n".encode()

        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        try:
            if self.raw_stream is not None:
                await response.write(self.raw_stream)
            elif scripted := self._scripted_calls(body, messages):
                await response.write(chunk({"role": "assistant", "content": None}))
                for i, (name, arguments) in enumerate(scripted):
                    call_id = f"chatcmpl-tool-{index}" + (f"-{i}" if i else "")
                    call = {"index": i, "id": call_id, "type": "function",
                            "function": {"name": name, "arguments": ""}}
                    await response.write(chunk({"tool_calls": [call]}))
                    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
                    half = len(text) // 2  # arguments arrive in pieces, as vLLM streams them
                    for piece in (text[:half], text[half:]):
                        await response.write(chunk(
                            {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
                await response.write(chunk({}, finish="tool_calls"))
                await response.write(b"data: [DONE]\n\n")
            else:
                await response.write(chunk({"role": "assistant", "content": ""}))
                delay = self.first_token_delay_s
                await asyncio.sleep(delay(index) if callable(delay) else delay)
                for i, token in enumerate(tokens):
                    if i and self.token_delay_s:
                        await asyncio.sleep(self.token_delay_s)
                    await response.write(chunk({"content": token}))
                await response.write(chunk({"content": ""}, finish="stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    await response.write(chunk(None, usage=usage))
                await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except asyncio.CancelledError:  # the client went away while we waited
            self._record_abort()
            raise
        except ConnectionResetError:  # the client went away while we wrote
            self._record_abort()
            return response
        self.completed += 1
        return response

    def _scripted_calls(self, body: dict[str, Any], messages: list[dict[str, Any]]
                        ) -> list[tuple[str, Any]]:
        """The tool calls to answer this request with (none: answer with text)."""
        tools = body.get("tools")
        if not tools:
            return []
        if self.tool_script is not None:
            return list(self.tool_script(messages, tools) or [])
        if self.tool_call and messages[-1].get("role") == "user":
            return [(self.tool_call, {})]
        return []

    def _record_abort(self) -> None:
        self.aborted += 1
        self.abort_event.set()

    async def _transcriptions(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except ValueError as exc:
            return _error(400, "BadRequestError", f"the request is not a multipart form: {exc}")
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        self.transcriptions.append(fields)
        if self.transcription_delay_s:
            await asyncio.sleep(self.transcription_delay_s)  # cancelled if the client leaves
        if self.fail_status is not None:
            return _error(self.fail_status, "InternalServerError",
                          "the test double was told to fail this transcription")
        model = fields.get("model")
        if model != self.stt_model:
            return _error(404, "NotFoundError", f"The model `{model}` does not exist.")
        response_format = fields.get("response_format", "json")
        allowed = ("json", "text", "verbose_json") if self.verbose_json else ("json", "text")
        if response_format not in allowed:
            formats = " or ".join(f"`{f}`" for f in allowed)
            return _error(400, "BadRequestError",
                          f"Currently only support response_format {formats}")
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _error(400, "BadRequestError", "the form has no audio `file`")
        try:
            audio = decode_wav(upload.file.read())
        except (wave.Error, EOFError, ValueError) as exc:
            return _error(400, "BadRequestError", f"cannot decode the audio file: {exc}")
        stt = self.stt
        transcript = await asyncio.to_thread(
            lambda: (stt or embedded_stt()).recognise(audio))  # never on the loop
        if response_format == "text":
            return web.Response(text=transcript.text, content_type="text/plain")
        if response_format == "json":
            return web.json_response({"text": transcript.text})
        duration = len(audio) / 16_000
        segments = []
        if transcript.text:
            segments.append({
                "id": 0, "seek": 0, "start": 0.0, "end": round(duration, 2),
                "text": f" {transcript.text}", "tokens": [], "temperature": 0.0,
                "avg_logprob": float(np.log(max(transcript.confidence, 1e-6))),
                "compression_ratio": 1.0, "no_speech_prob": 0.0,
            })
        return web.json_response({
            "task": "transcribe", "language": fields.get("language") or "en",
            "duration": duration, "text": transcript.text, "segments": segments,
        })


def decode_wav(data: bytes) -> np.ndarray:
    """16 kHz mono 16-bit WAV -> float32; anything else is refused (all RemoteSTT sends)."""
    with wave.open(io.BytesIO(data)) as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (16_000, 1, 2):
            raise ValueError(
                f"the double takes 16 kHz mono 16-bit WAV, got {wav.getframerate()} Hz, "
                f"{wav.getnchannels()} channel(s), {8 * wav.getsampwidth()} bit"
            )
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


_embedded_stt: Any = None
_embedded_stt_lock = threading.Lock()


def embedded_stt() -> Any:
    """The embedded profile's real STT (faster-whisper tiny.en from a pip package), built
    once per process, the way tests/conftest.py's embedded_models builds it."""
    global _embedded_stt
    with _embedded_stt_lock:
        if _embedded_stt is None:
            from pathlib import Path

            from voxlive.backends.loader import load_stage
            from voxlive.config import load_config

            models_yaml = Path(__file__).resolve().parents[2] / "models.yaml"
            profile = load_config(models_yaml).profile("embedded")
            _embedded_stt, _seconds = load_stage("stt", profile)
        return _embedded_stt


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status},
        status=status,
    )


# --- run on its own: a stand-in for `vllm serve MODEL --host H --port P` ------------------


def main(argv: list[str] | None = None) -> int:
    """Serve like `vllm serve`, logging vLLM-like lines to stdout. Options that vLLM does
    not know simulate what a managed vLLM process does: a slow start (--startup-delay),
    a crash while loading (--exit-after), an engine worker process (--worker) and a
    process that ignores SIGTERM (--ignore-sigterm). Unknown options are logged and
    ignored, as spawn_args meant for the real vLLM may reach the double."""
    parser = argparse.ArgumentParser(prog="vllm_double", description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--startup-delay", type=float, default=0.0,
                        help="seconds before listening (vLLM loads weights first)")
    parser.add_argument("--exit-after", type=float, default=None,
                        help="log an error and exit with --exit-code after this many seconds")
    parser.add_argument("--exit-code", type=int, default=1)
    parser.add_argument("--worker", action="store_true",
                        help="start a child process, as vLLM starts its engine core")
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--pid-file", help="write 'PID [WORKER_PID]' here once started")
    args, unknown = parser.parse_known_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # the parent reads our log line by line

    def log(message: str) -> None:
        print(f"INFO {time.strftime('%H:%M:%S')} [vllm_double] {message}")

    log(f"TEST DOUBLE of vLLM (no model runs): serving {args.model!r}")
    if unknown:
        log(f"ignoring vLLM options: {' '.join(unknown)}")
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the worker too
    pids = [os.getpid()]
    if args.worker:
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        pids.append(worker.pid)
        log(f"engine worker pid {worker.pid}")
    if args.pid_file:
        with open(args.pid_file, "w") as file:
            file.write(" ".join(map(str, pids)))
    if args.exit_after is not None:
        time.sleep(args.exit_after)
        print("ERROR [vllm_double] simulated failure: CUDA out of memory while loading weights")
        return args.exit_code
    if args.startup_delay:
        log(f"loading weights ({args.startup_delay:g} s)")
        time.sleep(args.startup_delay)
    asyncio.run(_serve(args))
    return 0


async def _serve(args: argparse.Namespace) -> None:
    double = VllmDouble(reply=args.reply, model=args.model, host=args.host,
                        token_delay_s=args.token_delay)
    double.port = args.port
    await double.start()
    print(f"INFO:     Uvicorn running on http://{args.host}:{args.port} (Press CTRL+C to quit)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if not args.ignore_sigterm:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print("INFO:     Shutting down")
    await double.stop()


if __name__ == "__main__":
    sys.exit(main())
