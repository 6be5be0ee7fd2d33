"""LLM backend for any OpenAI-compatible streaming chat server (vLLM in production), on the
official openai SDK.

One `AsyncOpenAI` client is made lazily, inside the running loop, and shared by every
call. `stream()` asks for a streamed chat completion and yields the reply's text pieces
(then any tool calls) as the chunks arrive.

Timeouts (asyncio deadlines around the SDK's calls; the SDK's own is on connecting):
  * connecting: `connect_timeout_s`;
  * from sending the request to the first content piece: `first_token_timeout_s`
    (connecting included, so it should exceed `connect_timeout_s`);
  * between later chunks of the stream: `read_timeout_s`, max(first_token_timeout_s, 30).

A failed connection or a missed first token is retried once, after 0.2 s, but only while
nothing has been yielded yet; an HTTP error is not (the SDK's own retries are off: they
would retry a 500 and back off for seconds). Closing the generator (aclose) or cancelling
its consumer closes the stream before its end, which drops the connection: vLLM sees the
disconnect and aborts generation. A stream that ends without a chunk saying why it
finished (`finish_reason`) was cut short. Every failure is raised as
`BackendError("llm", message)` with a message for the user.

What one reply may hold is bounded too, whatever the server does: a chunk comes per token,
so a stream of more than `MAX_CHUNKS_PER_TOKEN` x `max_tokens` chunks (a server that
ignores `max_tokens`, or trickles tool-call pieces that reset the chunk deadline) or
`MAX_CHARS_PER_TOKEN` x `max_tokens` characters of text, more than `MAX_TOOL_CALLS`
tool calls or a call over `MAX_TOOL_CALL_CHARS` is malformed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from voxlive.backends import openai_sdk as sdk
from voxlive.backends.base import BackendError, ChatMessage, ToolCall, backend_api_key
from voxlive.backends.registry import Backend, Strict

STAGE = "llm"
RETRY_DELAY_S = 0.2
MIN_READ_TIMEOUT_S = 30.0
MAX_CHUNKS_PER_TOKEN = 4
"""vLLM sends one chunk a token (with usage, a few more); four is room, not a loophole."""
MAX_CHARS_PER_TOKEN = 64
"""A token is a few characters; a chunk of megabytes is not one."""
MAX_TOOL_CALLS = 16
MAX_TOOL_CALL_CHARS = 64 * 1024


class OpenAILlm(Strict):
    backend: Literal["openai"]
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str
    api_key: str = Field("EMPTY", description="what the server wants: env:NAME or "
                         "file:PATH (never the key itself in models.yaml), or a placeholder")
    connect_timeout_s: float = Field(3.0, gt=0)
    first_token_timeout_s: float = Field(15.0, gt=0)
    max_tokens: int = Field(160, ge=1)
    temperature: float = Field(0.6, ge=0)
    spawn_args: list[str] = Field(
        default_factory=list,
        description="`voxlive serve --spawn-llm`: extra arguments for `vllm serve MODEL`",
    )
    spawn_timeout_s: float = Field(
        900.0, gt=0, description="--spawn-llm: how long the server may take to become healthy"
    )


class _Retryable(Exception):
    """A failure before the first token that is worth one more try; args[0] is the message."""


@dataclass
class _Reply:
    """What the chunks of one reply said besides its text."""

    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finished: bool = False  # a chunk gave its finish_reason
    usage: dict[str, Any] | None = None
    chunks: int = 0
    chars: int = 0  # of content

    def tool_calls(self) -> list[ToolCall]:
        return [ToolCall(c["name"], c["arguments"] or "{}", c["id"])
                for _, c in sorted(self.calls.items()) if c["name"]]


class OpenAIChatLLM:
    """Streams chat replies from an OpenAI-compatible server such as vLLM."""

    supports_tools = True

    def __init__(self, config: OpenAILlm):
        self.config = config
        self.api_key = backend_api_key("llm", config.api_key)
        self.base_url = config.base_url.rstrip("/")
        self.description = f"openai {config.model} at {self.base_url}"
        self.read_timeout_s = max(config.first_token_timeout_s, MIN_READ_TIMEOUT_S)
        self.last_usage: dict[str, Any] | None = None
        # Made here, at load time: importing the SDK takes a second or more, which the
        # event loop must not wait for at a caller's first question.
        self._client: Any = self._new_client()  # openai.AsyncOpenAI
        self._client_loop: asyncio.AbstractEventLoop | None = None  # the loop it serves

    def _new_client(self) -> Any:
        import httpx2

        openai = sdk.load()
        first = self.config.first_token_timeout_s
        return sdk.warm(openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, max_retries=0,
            # Reads are bounded by the deadlines here, per reply and per chunk.
            timeout=httpx2.Timeout(connect=self.config.connect_timeout_s, read=None,
                                   write=first, pool=first),
            # No HTTP_PROXY: the server is where llm.base_url says (mostly loopback).
            http_client=openai.DefaultAsyncHttpxClient(trust_env=False),
        ))

    def _get_client(self) -> Any:
        """The client of the running loop: its pooled connections belong to one loop."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed() or (
                self._client_loop not in (None, loop)):
            self._client = self._new_client()
        self._client_loop = loop
        return self._client

    def warm_up(self) -> None:
        """Nothing to initialise here: the server has loaded its model."""

    async def aclose(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None and not client.is_closed():
            await client.close()

    # --- streaming ----------------------------------------------------------------------

    async def stream(self, messages: list[ChatMessage],
                     tools: list[dict[str, Any]] | None = None) -> AsyncIterator[str | ToolCall]:
        """Yield the reply's non-empty text pieces, then any tool calls the model made;
        aclose() cancels the request."""
        openai = sdk.load()

        self.last_usage = None
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": True,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            "stream_options": {"include_usage": True},
        }
        if tools:
            request["tools"] = tools
            request["tool_choice"] = "auto"
        stream, first, reply = await self._open_with_retry(request)
        try:
            if first is not None:
                yield first
                loop = asyncio.get_running_loop()

                def line_deadline() -> float:
                    return loop.time() + self.read_timeout_s

                while True:
                    try:
                        piece = await self._next_piece(stream, reply, line_deadline)
                    except TimeoutError:
                        raise BackendError(
                            STAGE,
                            f"the LLM server at {self.base_url} stalled: nothing arrived for "
                            f"{self.read_timeout_s:g} s in the middle of the reply",
                        ) from None
                    except openai.APIConnectionError as exc:
                        raise BackendError(
                            STAGE,
                            f"lost the connection to the LLM server at {self.base_url} in the "
                            f"middle of the reply ({sdk.describe(exc)})",
                        ) from None
                    if piece is None:
                        break
                    yield piece
            if not reply.finished:
                raise BackendError(
                    STAGE,
                    f"the LLM server at {self.base_url} ended the stream before its last "
                    "chunk (finish_reason) and 'data: [DONE]'; the reply may be cut short",
                )
            for call in reply.tool_calls():
                yield call
        finally:
            # At the end the SDK has read to [DONE] and kept the connection; before it,
            # closing drops the connection, and vLLM aborts the request.
            await stream.close()

    async def _open_with_retry(self, request: dict[str, Any]) -> tuple[Any, str | None, _Reply]:
        try:
            return await self._open(request)
        except _Retryable:
            await asyncio.sleep(RETRY_DELAY_S)
        try:
            return await self._open(request)
        except _Retryable as exc:
            raise BackendError(STAGE, f"{exc.args[0]} (tried twice)") from None

    async def _open(self, request: dict[str, Any]) -> tuple[Any, str | None, _Reply]:
        """Send the request and read up to the first content piece (None: a reply without
        text, such as only tool calls)."""
        openai = sdk.load()

        client = self._get_client()
        reply = _Reply()
        deadline = asyncio.get_running_loop().time() + self.config.first_token_timeout_s
        stream = None
        ok = False
        try:
            async with asyncio.timeout_at(deadline):
                # The SDK's own request, with chunks as plain dicts: its typed
                # chat.completions.create builds a pydantic model per chunk, about 2 ms
                # each here, 8 times the whole stream's cost of the hand-written client.
                stream = await client.post("/chat/completions", body=request, cast_to=object,
                                           stream=True, stream_cls=openai.AsyncStream[object])
            content_type = stream.response.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                raise BackendError(
                    STAGE,
                    f"the LLM server at {self.base_url} answered with JSON instead of an "
                    "event stream; is it an OpenAI-compatible server that supports stream=true?",
                )
            first = await self._next_piece(stream, reply, lambda: deadline)
            ok = True
            return stream, first, reply
        except openai.APIStatusError as exc:
            raise BackendError(STAGE, await self._http_error(exc)) from None
        except openai.APITimeoutError:  # the SDK's only timeout here is connecting
            raise _Retryable(
                f"cannot reach the LLM server at {self.base_url}: the connection timed out "
                f"after {self.config.connect_timeout_s:g} s; is vLLM running, and is "
                "llm.base_url in models.yaml right?"
            ) from None
        except openai.APIConnectionError as exc:
            if stream is None and (sdk.refused(exc) or sdk.unknown_host(exc)):
                raise _Retryable(
                    f"cannot reach the LLM server at {self.base_url}: is vLLM running? "
                    f"Check llm.base_url in models.yaml ({sdk.describe(exc)})"
                ) from None
            raise _Retryable(
                f"the LLM server at {self.base_url} dropped the connection before replying "
                f"({sdk.describe(exc)})"
            ) from None
        except TimeoutError:
            raise _Retryable(
                f"the LLM server at {self.base_url} sent no first token within "
                f"{self.config.first_token_timeout_s:g} s (llm.first_token_timeout_s); "
                "it may be overloaded or still loading the model"
            ) from None
        finally:
            if not ok and stream is not None:
                await stream.close()

    async def _next_piece(self, stream: Any, reply: _Reply,
                          deadline: Callable[[], float]) -> str | None:
        """The next non-empty content piece; None when the stream has ended.

        `deadline()` gives the loop time by which the next chunk must arrive. Raises
        TimeoutError and the SDK's connection errors for the caller to word; a malformed
        chunk or an error event is a BackendError here."""
        openai = sdk.load()

        while True:
            try:
                async with asyncio.timeout_at(deadline()):
                    chunk = await anext(stream, None)
            except openai.APIConnectionError:
                raise
            except openai.APIError as exc:  # an error event in the stream
                raise BackendError(
                    STAGE, f"the LLM server reported an error mid-stream: {exc.message}"
                ) from None
            except (ValueError, UnicodeDecodeError) as exc:  # a data line that is not JSON
                raise self._malformed(f"not JSON ({exc})") from None
            if chunk is None:
                return None
            piece = self._take(chunk, reply)
            if piece:
                return piece

    def _take(self, chunk: Any, reply: _Reply) -> str | None:
        """Content of one chunk (a JSON object), if any; keeps usage and finish_reason,
        gathers tool-call pieces."""
        if not isinstance(chunk, dict):
            raise self._malformed(f"a chunk is not a JSON object: {_excerpt(chunk)}")
        reply.chunks += 1
        if reply.chunks > MAX_CHUNKS_PER_TOKEN * self.config.max_tokens + 16:
            raise self._malformed(f"over {reply.chunks - 1} chunks for at most "
                                  f"{self.config.max_tokens} tokens (llm.max_tokens)")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            reply.usage = self.last_usage = usage
        choices = chunk.get("choices")
        if not choices:
            return None
        try:
            choice = choices[0]
            if choice.get("finish_reason") is not None:
                reply.finished = True
            delta = choice.get("delta") or {}
            content = delta.get("content")
            for piece in delta.get("tool_calls") or []:
                call = reply.calls.setdefault(int(piece.get("index") or 0),
                                              {"name": "", "arguments": "", "id": ""})
                call["id"] = piece.get("id") or call["id"]
                function = piece.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
                if len(reply.calls) > MAX_TOOL_CALLS or \
                        len(call["name"]) + len(call["arguments"]) > MAX_TOOL_CALL_CHARS:
                    raise self._malformed(f"over {MAX_TOOL_CALLS} tool calls or "
                                          f"{MAX_TOOL_CALL_CHARS} characters in one")
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            raise self._malformed(f"unexpected chunk shape: {_excerpt(chunk)}") from None
        if content is not None and not isinstance(content, str):
            raise self._malformed(f"delta.content is not text: {_excerpt(chunk)}")
        reply.chars += len(content or "")
        if reply.chars > MAX_CHARS_PER_TOKEN * self.config.max_tokens + 1024:
            raise self._malformed(f"over {reply.chars - len(content or '')} characters of "
                                  f"text for at most {self.config.max_tokens} tokens")
        return content or None

    def _malformed(self, detail: str) -> BackendError:
        return BackendError(
            STAGE, f"malformed stream from the LLM server at {self.base_url}: {detail}"
        )

    async def _http_error(self, exc: Any) -> str:
        hint = ""
        if exc.status_code == 404:
            served = await self._served_models()
            hint = f" (llm.model is '{self.config.model}'"
            hint += f"; the server serves: {', '.join(served)})" if served else ")"
        elif exc.status_code in (401, 403):
            hint = " (check llm.api_key in models.yaml)"
        return sdk.status_error(exc, f"LLM server at {self.base_url}") + hint

    async def _served_models(self) -> list[str]:
        """Best effort: the model ids the server lists at GET /models."""
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                page = await self._get_client().models.list()
            return [str(model.id) for model in page.data]
        except Exception:  # noqa: BLE001 - only a hint: its absence says nothing more
            return []


def _excerpt(chunk: Any) -> str:
    try:
        text = json.dumps(chunk)
    except (TypeError, ValueError):
        text = repr(chunk)
    return repr(text[:120])


BACKEND = Backend(
    stage="llm", name="openai", config=OpenAILlm, factory=OpenAIChatLLM, package="openai",
    install="pip install 'voxlive[openai]'  (the official openai SDK)", model_field=None,
)
