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

It listens on 127.0.0.1 only, on a port the OS picks. It records every request body in
`requests`, counts streams that the client abandoned by disconnecting (`aborted`, and
`abort_event` is set) and streams that finished (`completed`).

    async with VllmDouble(reply="Hello there.", token_delay_s=0.01) as server:
        server.base_url  # 'http://127.0.0.1:PORT/v1'
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
DEFAULT_MODEL = "double/test-model"
DEFAULT_REPLY = "Hello! I am a test double of vLLM, and this is my streamed reply."

Reply = str | Callable[[list[dict[str, Any]]], str]
Delay = float | Callable[[int], float]


def split_tokens(text: str) -> list[str]:
    """Word-ish tokens that join back to `text` exactly: 'Hi there' -> ['Hi', ' there']."""
    return re.findall(r"\s*\S+|\s+", text)


def unused_base_url() -> str:
    """A base_url on 127.0.0.1 where nothing listens (a port the OS just handed out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"http://{HOST}:{port}/v1"


class VllmDouble:
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
    ):
        self.reply = reply
        self.model = model
        self.first_token_delay_s = first_token_delay_s
        self.token_delay_s = token_delay_s
        self.raw_stream = raw_stream
        self.tool_call = tool_call
        self.requests: list[dict[str, Any]] = []
        self.aborted = 0
        self.completed = 0
        self.abort_event = asyncio.Event()
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("VllmDouble is not started")
        return f"http://{HOST}:{self.port}/v1"

    async def start(self) -> None:
        """Listen on 127.0.0.1; on the same port again after stop(), else on a new one."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        # handler_cancellation: a client disconnect cancels the handler, as vLLM aborts.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, self.port or 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening (base_url stays; connecting to it is then refused)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> VllmDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

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
            elif self.tool_call and body.get("tools") and messages[-1].get("role") == "user":
                await response.write(chunk({"role": "assistant", "content": None}))
                call = {"index": 0, "id": f"chatcmpl-tool-{index}", "type": "function",
                        "function": {"name": self.tool_call, "arguments": ""}}
                await response.write(chunk({"tool_calls": [call]}))
                await response.write(chunk(
                    {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
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

    def _record_abort(self) -> None:
        self.aborted += 1
        self.abort_event.set()


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"object": "error", "message": message, "type": kind, "param": None, "code": status},
        status=status,
    )
