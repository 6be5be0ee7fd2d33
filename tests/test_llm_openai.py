"""OpenAIChatLLM against VllmDouble, a test double of vLLM's OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.doubles.vllm_double import DEFAULT_MODEL, VllmDouble, split_tokens, unused_base_url
from voxlive.backends.base import BackendError, ToolCall
from voxlive.backends.llm_openai import OpenAIChatLLM
from voxlive.config import OpenAILlm

pytestmark = pytest.mark.integration  # an HTTP server with slow and hung answers

MESSAGES = [
    {"role": "system", "content": "You are a test."},
    {"role": "user", "content": "Say hello."},
]
LONG_REPLY = " ".join(f"word{i}" for i in range(200))


def make_llm(base_url: str, **overrides) -> OpenAIChatLLM:
    settings = {
        "backend": "openai",
        "base_url": base_url,
        "model": DEFAULT_MODEL,
        "connect_timeout_s": 1.0,
        "first_token_timeout_s": 2.0,
    }
    settings.update(overrides)
    return OpenAIChatLLM(OpenAILlm(**settings))


async def collect(llm: OpenAIChatLLM, messages=MESSAGES) -> list[str]:
    return [piece async for piece in llm.stream(messages)]


async def test_streams_the_reply(caplog: pytest.LogCaptureFixture):
    reply = "Hello there! It is a fine day, isn't it?"
    caplog.set_level(logging.INFO)
    async with VllmDouble(reply=reply) as server:
        llm = make_llm(server.base_url, max_tokens=42, temperature=0.25)
        try:
            pieces = await collect(llm)
        finally:
            await llm.aclose()
    # the SDK's HTTP library logs no line per reply into the daemon's log
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "openai"))]

    assert "".join(pieces) == reply
    assert len(pieces) > 1
    assert all(pieces)
    assert llm.description == f"openai {DEFAULT_MODEL} at {server.base_url}"
    [body] = server.requests
    assert body["stream"] is True
    assert body["model"] == DEFAULT_MODEL
    assert body["messages"] == MESSAGES
    assert body["max_tokens"] == 42
    assert body["temperature"] == 0.25
    assert body["stream_options"] == {"include_usage": True}
    assert llm.last_usage is not None
    assert llm.last_usage["completion_tokens"] == len(split_tokens(reply))
    assert llm.last_usage["total_tokens"] == (
        llm.last_usage["prompt_tokens"] + llm.last_usage["completion_tokens"]
    )
    assert server.completed == 1 and server.aborted == 0


async def test_reply_can_depend_on_the_messages_and_client_is_reused():
    async with VllmDouble(reply=lambda messages: f"You said: {messages[-1]['content']}") as server:
        llm = make_llm(server.base_url)
        # The SDK's AsyncOpenAI (its connection pool), made at load time: importing the
        # SDK takes a second, which no caller's first question should wait for.
        client = llm._client
        assert client is not None
        try:
            first = "".join(await collect(llm))
            second = "".join(await collect(llm, [{"role": "user", "content": "again"}]))
            assert llm._client is client
        finally:
            await llm.aclose()
    assert first == "You said: Say hello."
    assert second == "You said: again"
    assert llm._client is None and client.is_closed()


async def test_server_down_raises_quickly():
    connect_timeout = 1.0
    llm = make_llm(unused_base_url(), connect_timeout_s=connect_timeout)
    started = time.monotonic()
    try:
        with pytest.raises(BackendError) as caught:
            await collect(llm)
    finally:
        await llm.aclose()
    elapsed = time.monotonic() - started

    assert caught.value.stage == "llm"
    assert "cannot reach the LLM server" in caught.value.message
    assert llm.base_url in caught.value.message
    assert "vLLM running" in caught.value.message
    assert elapsed < connect_timeout * 2


async def test_server_stopped_after_a_reply_raises():
    async with VllmDouble(reply="Fine.") as server:
        llm = make_llm(server.base_url)
        try:
            assert "".join(await collect(llm)) == "Fine."
            await server.stop()
            with pytest.raises(BackendError, match="cannot reach the LLM server"):
                await collect(llm)
        finally:
            await llm.aclose()


async def test_unknown_model_reports_the_404():
    async with VllmDouble() as server:
        llm = make_llm(server.base_url, model="no/such-model")
        try:
            with pytest.raises(BackendError) as caught:
                await collect(llm)
        finally:
            await llm.aclose()

    message = caught.value.message
    assert caught.value.stage == "llm"
    assert "404" in message
    assert "The model `no/such-model` does not exist." in message
    assert DEFAULT_MODEL in message  # the served models, listed from GET /v1/models
    assert len(server.requests) == 1  # an HTTP error is not retried


async def test_slow_first_token_times_out_after_one_retry():
    async with VllmDouble(first_token_delay_s=5.0) as server:
        llm = make_llm(server.base_url, first_token_timeout_s=0.3)
        started = time.monotonic()
        try:
            with pytest.raises(BackendError) as caught:
                await collect(llm)
        finally:
            await llm.aclose()
        elapsed = time.monotonic() - started
        await asyncio.wait_for(_until(lambda: server.aborted == 2), 1.0)

    assert caught.value.stage == "llm"
    assert "first token" in caught.value.message
    assert "0.3 s" in caught.value.message
    assert len(server.requests) == 2
    assert elapsed < 1.5
    assert server.completed == 0


async def test_first_token_retry_can_succeed():
    def first_request_slow(index: int) -> float:
        return 5.0 if index == 0 else 0.0

    async with VllmDouble(
        reply="Second time lucky.", first_token_delay_s=first_request_slow
    ) as server:
        llm = make_llm(server.base_url, first_token_timeout_s=0.3)
        try:
            assert "".join(await collect(llm)) == "Second time lucky."
        finally:
            await llm.aclose()
    assert len(server.requests) == 2
    assert server.completed == 1


async def test_slow_later_tokens_are_fine():
    """Gaps between later tokens longer than first_token_timeout_s are no timeout (the
    first token comes at once: a busy machine must not make it miss its deadline)."""
    reply = "One two three"
    async with VllmDouble(reply=reply, token_delay_s=0.8) as server:
        llm = make_llm(server.base_url, first_token_timeout_s=0.6)
        try:
            pieces = await collect(llm)
        finally:
            await llm.aclose()
    assert pieces == ["One", " two", " three"]
    assert len(server.requests) == 1


async def test_stall_after_a_token_is_not_retried():
    async with VllmDouble(reply="One two three", token_delay_s=5.0) as server:
        llm = make_llm(server.base_url, first_token_timeout_s=0.3)
        llm.read_timeout_s = 0.3
        pieces: list[str] = []
        try:
            with pytest.raises(BackendError, match="stalled") as caught:
                async for piece in llm.stream(MESSAGES):
                    pieces.append(piece)
        finally:
            await llm.aclose()
        await asyncio.wait_for(server.abort_event.wait(), 1.0)
    assert caught.value.stage == "llm"
    assert pieces == ["One"]
    assert len(server.requests) == 1


async def test_aclose_aborts_the_request_on_the_server():
    async with VllmDouble(reply=LONG_REPLY, token_delay_s=0.05) as server:
        llm = make_llm(server.base_url)
        try:
            stream = llm.stream(MESSAGES)
            pieces = [await anext(stream), await anext(stream)]
            await stream.aclose()
            await asyncio.wait_for(server.abort_event.wait(), 1.0)
            assert server.aborted == 1
            assert server.completed == 0
            # The shared session still works after an aborted stream.
            server.reply, server.token_delay_s = "Still here.", 0.0
            assert "".join(await collect(llm)) == "Still here."
        finally:
            await llm.aclose()
    assert pieces == ["word0", " word1"]


async def test_cancelling_the_consumer_aborts_the_request():
    async with VllmDouble(reply=LONG_REPLY, token_delay_s=0.05) as server:
        llm = make_llm(server.base_url)
        got_two = asyncio.Event()

        async def consume() -> None:
            count = 0
            async for _ in llm.stream(MESSAGES):
                count += 1
                if count == 2:
                    got_two.set()

        task = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(got_two.wait(), 2.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(server.abort_event.wait(), 1.0)
        finally:
            await llm.aclose()
    assert server.aborted == 1


async def pieces_before_error(raw: bytes, match: str,
                              **overrides: object) -> tuple[list[str], BackendError]:
    """What the LLM yields of the double's `raw` stream before the BackendError (matching
    `match`) that the stream must end in."""
    async with VllmDouble(raw_stream=raw) as server:
        llm = make_llm(server.base_url, **overrides)
        pieces: list[str] = []
        try:
            with pytest.raises(BackendError, match=match) as caught:
                async for piece in llm.stream(MESSAGES):
                    pieces.append(piece)
        finally:
            await llm.aclose()
    return pieces, caught.value


async def test_malformed_stream():
    raw = b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\ndata: {not json\n\n'
    pieces, error = await pieces_before_error(raw, "malformed stream")
    assert error.stage == "llm"
    assert pieces == ["Hi"]


async def test_stream_cut_before_done():
    raw = b': a comment\n\ndata: {"choices": [{"delta": {"content": "Hi"}}]}\n\n'
    pieces, _ = await pieces_before_error(raw, r"\[DONE\]")
    assert pieces == ["Hi"]


async def test_error_event_in_the_stream():
    raw = b'data: {"error": {"message": "KV cache exhausted", "type": "InternalServerError"}}\n\n'
    pieces, _ = await pieces_before_error(raw, "KV cache exhausted")
    assert pieces == []


async def _until(condition, interval: float = 0.01) -> None:
    while not condition():
        await asyncio.sleep(interval)


async def test_a_tool_call_is_streamed_as_a_tool_call():
    tool = {"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}
    async with VllmDouble(reply="unused", tool_call="look") as server:
        llm = make_llm(server.base_url)
        try:
            pieces = [p async for p in llm.stream([{"role": "user", "content": "hi"}], [tool])]
            plain = [p async for p in llm.stream([{"role": "user", "content": "hi"}])]
        finally:
            await llm.aclose()
    [call] = pieces
    assert isinstance(call, ToolCall)
    assert (call.name, call.arguments, call.id) == ("look", "{}", "chatcmpl-tool-0")
    assert server.requests[0]["tools"] == [tool] and server.requests[0]["tool_choice"] == "auto"
    assert "".join(plain) == "unused"  # without tools on offer, it answers in words


async def test_a_server_that_accepts_but_never_answers_times_out_after_one_retry():
    """A hung server (it takes the connection and the request, and sends no headers) is
    bounded by first_token_timeout_s too, not only one that is slow after its headers."""
    connections = 0
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")  # the request's headers arrive...
        await release.wait()  # ...and nothing is ever answered
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    llm = make_llm(f"http://127.0.0.1:{port}/v1", first_token_timeout_s=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(BackendError) as caught:
            await collect(llm)
    finally:
        await llm.aclose()
        release.set()
        server.close()
        await server.wait_closed()
    elapsed = time.monotonic() - started

    assert caught.value.stage == "llm"
    assert "no first token within 0.3 s" in caught.value.message
    assert "(tried twice)" in caught.value.message
    assert connections == 2
    assert elapsed < 1.5


async def test_a_reply_longer_than_max_tokens_allows_is_cut_as_malformed():
    """A server that ignores max_tokens (or trickles chunks to keep the deadline alive)
    cannot hold the call's reply forever."""
    chunk = b'data: {"choices": [{"delta": {"content": "la "}}]}\n\n'
    pieces, _ = await pieces_before_error(  # room for 4 x 2 + 16 chunks
        chunk * 40 + b"data: [DONE]\n\n", "over 24 chunks for at most 2 tokens", max_tokens=2)
    assert len(pieces) == 24


async def test_one_huge_chunk_is_malformed():
    chunk = b'data: {"choices": [{"delta": {"content": "' + b"a" * 300_000 + b'"}}]}\n\n'
    pieces, _ = await pieces_before_error(  # room for 64 x 100 + 1024 characters
        chunk + b"data: [DONE]\n\n", "characters of text for at most 100", max_tokens=100)
    assert pieces == []


async def test_a_tool_call_too_large_is_malformed():
    piece = ('data: {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", '
             '"function": {"name": "look", "arguments": "' + "x" * 40_000 + '"}}]}}]}\n\n')
    await pieces_before_error(piece.encode() * 2 + b"data: [DONE]\n\n", "characters in one")
