"""LLM backend for any OpenAI-compatible streaming chat server (vLLM in production).

One `aiohttp.ClientSession` is created lazily, inside the running loop, and shared by
every call. `stream()` posts to {base_url}/chat/completions with "stream": true and
yields the reply's text pieces as the server-sent events arrive.

Timeouts:
  * connecting: `connect_timeout_s`;
  * from sending the request to the first content piece: `first_token_timeout_s`
    (connecting included, so it should exceed `connect_timeout_s`);
  * between later lines of the stream: `read_timeout_s`, max(first_token_timeout_s, 30).

A failed connection or a missed first token is retried once, after 0.2 s, but only while
nothing has been yielded yet. Closing the generator (aclose) or cancelling its consumer
closes the HTTP response at once, so vLLM sees the disconnect and aborts generation.
Every failure is raised as `BackendError("llm", message)` with a message for the user.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from voxlive.backends.base import BackendError, ChatMessage, ToolCall
from voxlive.config import OpenAILlm

STAGE = "llm"
RETRY_DELAY_S = 0.2
MIN_READ_TIMEOUT_S = 30.0


class _Retryable(Exception):
    """A failure before the first token that is worth one more try; args[0] is the message."""


class _Done(Exception):
    """The stream said [DONE]."""


class OpenAIChatLLM:
    """Streams chat replies from an OpenAI-compatible server such as vLLM."""

    def __init__(self, config: OpenAILlm):
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.description = f"openai {config.model} at {self.base_url}"
        self.read_timeout_s = max(config.first_token_timeout_s, MIN_READ_TIMEOUT_S)
        self.last_usage: dict[str, Any] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    # --- session ------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=self.config.connect_timeout_s,
                sock_connect=self.config.connect_timeout_s,
                sock_read=None,
            )
            self._session = aiohttp.ClientSession(
                timeout=timeout,
                headers={"Authorization": f"Bearer {self.config.api_key}"},
            )
            self._session_loop = loop
        return self._session

    async def aclose(self) -> None:
        session, self._session, self._session_loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()

    # --- streaming ----------------------------------------------------------------------

    supports_tools = True

    async def stream(self, messages: list[ChatMessage],
                     tools: list[dict[str, Any]] | None = None) -> AsyncIterator[str | ToolCall]:
        """Yield the reply's non-empty text pieces, then any tool calls the model made;
        aclose() cancels the request."""
        self.last_usage = None
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": True,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        calls: dict[int, dict[str, str]] = {}
        response, first = await self._open_with_retry(body, calls)
        finished = False
        try:
            if first is None:  # [DONE] before any content: an empty reply, or only tools
                finished = True
                for call in _tool_calls(calls):
                    yield call
                return
            yield first
            loop = asyncio.get_running_loop()

            def line_deadline() -> float:
                return loop.time() + self.read_timeout_s

            while True:
                try:
                    piece = await self._next_piece(response, line_deadline, calls)
                except _Done:
                    finished = True
                    for call in _tool_calls(calls):
                        yield call
                    return
                except TimeoutError:
                    raise BackendError(
                        STAGE,
                        f"the LLM server at {self.base_url} stalled: nothing arrived for "
                        f"{self.read_timeout_s:g} s in the middle of the reply",
                    ) from None
                except (aiohttp.ClientError, ConnectionError) as exc:
                    raise BackendError(
                        STAGE,
                        f"lost the connection to the LLM server at {self.base_url} in the "
                        f"middle of the reply ({_describe_exc(exc)})",
                    ) from None
                yield piece
        finally:
            if finished:
                await self._drain_and_release(response)
            else:
                # Closing (not releasing) drops the connection: vLLM aborts the request.
                response.close()

    async def _open_with_retry(
        self, body: dict[str, Any], calls: dict[int, dict[str, str]]
    ) -> tuple[aiohttp.ClientResponse, str | None]:
        try:
            return await self._open(body, calls)
        except _Retryable:
            await asyncio.sleep(RETRY_DELAY_S)
            calls.clear()
        try:
            return await self._open(body, calls)
        except _Retryable as exc:
            raise BackendError(STAGE, f"{exc.args[0]} (tried twice)") from None

    async def _open(self, body: dict[str, Any], calls: dict[int, dict[str, str]]
                    ) -> tuple[aiohttp.ClientResponse, str | None]:
        """Send the request and read up to the first content piece (None: empty reply)."""
        session = self._get_session()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.first_token_timeout_s
        response: aiohttp.ClientResponse | None = None
        ok = False
        try:
            async with asyncio.timeout_at(deadline):
                response = await session.post(self.url, json=body)
            if response.status >= 400:
                raise BackendError(STAGE, await self._http_error(response))
            content_type = response.headers.get("Content-Type", "")
            if content_type.startswith("application/json"):
                raise BackendError(
                    STAGE,
                    f"the LLM server at {self.base_url} answered with JSON instead of an "
                    "event stream; is it an OpenAI-compatible server that supports stream=true?",
                )
            try:
                first = await self._next_piece(response, lambda: deadline, calls)
            except _Done:
                first = None
            ok = True
            return response, first
        except aiohttp.ServerTimeoutError:  # before TimeoutError: it is one too
            raise _Retryable(
                f"cannot reach the LLM server at {self.base_url}: the connection timed out "
                f"after {self.config.connect_timeout_s:g} s; is vLLM running, and is "
                "llm.base_url in models.yaml right?"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise _Retryable(
                f"cannot reach the LLM server at {self.base_url}: is vLLM running? "
                f"Check llm.base_url in models.yaml ({_describe_exc(exc)})"
            ) from None
        except TimeoutError:
            raise _Retryable(
                f"the LLM server at {self.base_url} sent no first token within "
                f"{self.config.first_token_timeout_s:g} s (llm.first_token_timeout_s); "
                "it may be overloaded or still loading the model"
            ) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise _Retryable(
                f"the LLM server at {self.base_url} dropped the connection before replying "
                f"({_describe_exc(exc)})"
            ) from None
        finally:
            if not ok and response is not None:
                response.close()

    async def _next_piece(self, response: aiohttp.ClientResponse, deadline_of_line,
                          calls: dict[int, dict[str, str]]) -> str:
        """The next non-empty content piece; raises _Done at [DONE].

        `deadline_of_line()` gives the loop time by which the next line must arrive.
        """
        while True:
            async with asyncio.timeout_at(deadline_of_line()):
                try:
                    raw = await response.content.readline()
                except ValueError:  # a line longer than aiohttp's buffer limit
                    raise self._malformed("a line of the stream is too long") from None
            if not raw:
                raise BackendError(
                    STAGE,
                    f"the LLM server at {self.base_url} ended the stream before "
                    "'data: [DONE]'; the reply may be cut short",
                )
            piece = self._parse_line(raw, calls)
            if piece:
                return piece

    def _parse_line(self, raw: bytes, calls: dict[int, dict[str, str]]) -> str | None:
        """Content of one SSE line, if any; keeps usage, gathers tool-call pieces into
        `calls`; raises _Done at [DONE]."""
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise self._malformed("the stream is not UTF-8 text") from None
        if not line or line.startswith(":"):
            return None  # event separator or comment
        field, _, value = line.partition(":")
        if field != "data":
            return None  # other SSE fields (event, id, retry) carry nothing here
        value = value.removeprefix(" ")
        if value.strip() == "[DONE]":
            raise _Done
        try:
            chunk = json.loads(value)
        except json.JSONDecodeError:
            raise self._malformed(f"not JSON: {value[:120]!r}") from None
        if not isinstance(chunk, dict):
            raise self._malformed(f"a chunk is not a JSON object: {value[:120]!r}")
        error = _error_message(chunk)
        if error is not None:
            raise BackendError(STAGE, f"the LLM server reported an error mid-stream: {error}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.last_usage = usage
        choices = chunk.get("choices")
        if not choices:
            return None
        try:
            delta = choices[0].get("delta", {})
            content = delta.get("content")
            for piece in delta.get("tool_calls") or []:
                call = calls.setdefault(int(piece.get("index", 0)),
                                        {"name": "", "arguments": "", "id": ""})
                call["id"] = piece.get("id") or call["id"]
                function = piece.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            raise self._malformed(f"unexpected chunk shape: {value[:120]!r}") from None
        if content is not None and not isinstance(content, str):
            raise self._malformed(f"delta.content is not text: {value[:120]!r}")
        return content or None

    def _malformed(self, detail: str) -> BackendError:
        return BackendError(
            STAGE, f"malformed stream from the LLM server at {self.base_url}: {detail}"
        )

    async def _http_error(self, response: aiohttp.ClientResponse) -> str:
        detail = ""
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                text = await response.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError):
            text = ""
        try:
            payload = json.loads(text) if text else None
        except json.JSONDecodeError:
            payload = None
        message = _error_message(payload) if isinstance(payload, dict) else None
        if message:
            detail = f": {message}"
        elif text.strip():
            detail = f": {text.strip()[:200]}"
        hint = ""
        if response.status == 404:
            served = await self._served_models()
            hint = f" (llm.model is '{self.config.model}'"
            hint += f"; the server serves: {', '.join(served)})" if served else ")"
        elif response.status in (401, 403):
            hint = " (check llm.api_key in models.yaml)"
        return (
            f"the LLM server at {self.base_url} answered HTTP {response.status} "
            f"{response.reason or ''}".rstrip()
            + detail
            + hint
        )

    async def _served_models(self) -> list[str]:
        """Best effort: the model ids the server lists at GET /models."""
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                async with self._get_session().get(f"{self.base_url}/models") as response:
                    if response.status != 200:
                        return []
                    payload = await response.json(content_type=None)
            return [str(m["id"]) for m in payload.get("data", []) if "id" in m]
        except (TimeoutError, aiohttp.ClientError, ValueError, TypeError, AttributeError):
            return []

    async def _drain_and_release(self, response: aiohttp.ClientResponse) -> None:
        """After [DONE]: read what is left (normally nothing) so the connection is reused."""
        try:
            async with asyncio.timeout(0.5):
                while await response.content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            response.close()
            return
        await response.release()


def _tool_calls(calls: dict[int, dict[str, str]]) -> list[ToolCall]:
    return [ToolCall(c["name"], c["arguments"] or "{}", c["id"])
            for _, c in sorted(calls.items()) if c["name"]]


def _error_message(payload: dict[str, Any]) -> str | None:
    """The message of an OpenAI-style ({"error": {...}}) or vLLM-style error body."""
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if isinstance(error, str):
        return error
    if payload.get("object") == "error":
        return str(payload.get("message") or payload)
    return None


def _describe_exc(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
