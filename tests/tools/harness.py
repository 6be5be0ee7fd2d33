"""Helpers for the tool tests: the test MCP server as a subprocess (stdio settings, or a
streamable-HTTP server on 127.0.0.1), and a turn that runs tool rounds with a real LLM
client against the vLLM double, keeping the spoken text instead of synthesising it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from voxlive.backends.base import ToolCall
from voxlive.tools.runner import ToolRounds, TurnIO

REPO = Path(__file__).resolve().parents[2]
SERVER_MODULE = "tests.tools.mcp_test_server"


def stdio_server(log: Path, name: str = "test", **extra: Any) -> dict[str, Any]:
    """The `tools.servers` entry that runs the test server over stdio."""
    return {"name": name, "command": [sys.executable, "-m", SERVER_MODULE], "cwd": str(REPO),
            "env": {"MCP_TEST_LOG": str(log)}, "connect_timeout_s": 60, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HttpServer:
    """The test server over streamable HTTP, in a subprocess on 127.0.0.1."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> HttpServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", SERVER_MODULE, "--http", str(self.port)], cwd=REPO,
            env={"MCP_TEST_LOG": str(self.log), "PATH": "/usr/bin:/bin",
                 "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):  # the import alone takes seconds on a busy machine
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the HTTP test MCP server exited") from None
                await asyncio.sleep(0.1)
            else:
                writer.close()
                return self
        raise RuntimeError("the HTTP test MCP server did not listen within 60 s")

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 10)


class TextTurn:
    """One user turn through ToolRounds, as CallSession._reply runs it, with the LLM's
    text kept in `spoken` (no TTS) and the events in `events`."""

    def __init__(self, llm: Any, rounds: ToolRounds):
        self.llm = llm
        self.rounds = rounds
        self.spoken: list[str] = []

    async def stream(self, messages: list[dict[str, Any]],
                     tools: list[dict[str, Any]] | None) -> list[ToolCall]:
        calls: list[ToolCall] = []
        text: list[str] = []
        stream = self.llm.stream(messages, tools) if tools else self.llm.stream(messages)
        async for piece in stream:
            if isinstance(piece, ToolCall):
                calls.append(piece)
            else:
                text.append(piece)
        if text:
            self.spoken.append("".join(text))
        return calls

    async def say(self, text: str) -> None:
        self.spoken.append(text)

    async def __call__(self, user_text: str, turn: int = 1) -> list[str]:
        messages = [{"role": "system", "content": "You are a test."},
                    {"role": "user", "content": user_text}]
        tools = await self.rounds.offer(self.llm, look=False)
        calls = await self.stream(messages, tools)
        if calls:
            await self.rounds.run(turn, user_text, messages, calls,
                                  TurnIO(stream=self.stream, say=self.say))
        return self.spoken
