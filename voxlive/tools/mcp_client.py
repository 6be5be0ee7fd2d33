"""Connections to the MCP servers of the `tools:` section, shared by every call.

The official `mcp` SDK (2.x) is the client. Its `mcp.Client` is an anyio context whose
task group must be entered and left by the same task, so each server has an owner task
that holds the connection open until it is closed or breaks; calls from the turns use the
connection meanwhile. Connecting is lazy (the first turn that offers tools, or `connect()`
at start-up) and bounded by `connect_timeout_s`; a server that fails (its process died,
the HTTP endpoint went away) is reconnected at the next call, no more often than every
`reconnect_after_s`. Cancelling a call's task (a barge-in) makes the SDK send the MCP
`notifications/cancelled` for it; so does a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from voxlive.tools.config import McpServerSettings, ToolSettings

log = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool call that gave no result; `kind` is "error", "timeout" or "unavailable"
    ("waiting": a server that failed, before its next reconnect; calls see "unavailable")."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class McpTool:
    """One tool as offered to the LLM; `name` is unique across servers."""

    server: str
    name: str
    remote_name: str
    description: str
    input_schema: dict[str, Any]

    def schema(self) -> dict[str, Any]:
        """The OpenAI tool-calling form (what vLLM takes in `tools`)."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": self.input_schema or {"type": "object", "properties": {}}}}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpConnection:
    """One MCP server: connect, list its tools, call them, reconnect after a failure."""

    def __init__(self, settings: McpServerSettings, reconnect_after_s: float = 2.0):
        self.settings = settings
        self.reconnect_after_s = reconnect_after_s
        self.tools: list[Any] = []  # mcp_types.Tool, as listed
        self.connects = 0
        self._client: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._failed_at: float | None = None
        self.last_error = ""

    @property
    def connected(self) -> bool:
        return self._client is not None

    def _target(self) -> Any:
        from mcp import StdioServerParameters

        s = self.settings
        if s.url is not None:
            return s.url
        assert s.command is not None
        program = s.command[0]
        if program in ("python", "python3"):  # the interpreter voxlive runs in (its venv)
            program = sys.executable
        return StdioServerParameters(command=program, args=s.command[1:],
                                     env=s.env or None, cwd=s.cwd)

    def _where(self) -> str:
        s = self.settings
        return f"`{' '.join(s.command)}` (stdio)" if s.command else f"{s.url}"

    async def ensure(self) -> Any:
        """The live client, connecting (or reconnecting) first when needed."""
        if self._client is not None:
            return self._client
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._client is not None:
                return self._client
            wait = (0.0 if self._failed_at is None
                    else self._failed_at + self.reconnect_after_s - time.monotonic())
            if wait > 0:
                raise ToolError("waiting", f"tools server '{self.settings.name}' is down "
                                f"({self.last_error}); reconnecting in {wait:.1f} s")
            await self._shutdown_owner()
            try:
                await self._connect()
            except ToolError as exc:
                self._failed(exc.message)
                raise
            return self._client

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Any] = loop.create_future()
        # Retrieved even when nobody waits any more (a timeout): no "never retrieved" noise.
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._stop = asyncio.Event()
        self._owner = loop.create_task(self._own(ready, self._stop),
                                       name=f"mcp-{self.settings.name}")
        name, limit = self.settings.name, self.settings.connect_timeout_s
        try:
            async with asyncio.timeout(limit):
                self._client, self.tools = await asyncio.shield(ready)
        except TimeoutError:
            await self._shutdown_owner()
            raise ToolError("unavailable", f"tools server '{name}' at {self._where()} did not "
                            f"answer the MCP handshake within {limit:g} s") from None
        except asyncio.CancelledError:
            await self._shutdown_owner()  # no server process left behind
            raise
        except Exception as exc:
            await self._shutdown_owner()
            hint = (" (is the program installed, and is the command right?)"
                    if isinstance(exc, OSError) else "")
            raise ToolError("unavailable", f"tools server '{name}' at {self._where()} "
                            f"could not be started or reached: {_describe(exc)}{hint}") from None
        self.connects += 1
        self._failed_at = None
        log.info("tools server %s: connected, tools %s", name, [t.name for t in self.tools])

    async def _own(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        """Hold the connection open in this one task until `stop` (or it breaks)."""
        from mcp import Client

        try:
            async with Client(self._target()) as client:
                tools, cursor = [], None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
                if not ready.done():
                    ready.set_result((client, tools))
                await stop.wait()
        except BaseException as exc:  # noqa: BLE001 (the turns learn of it through `ready`)
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception)
                                    else ToolError("unavailable", _describe(exc)))
            elif not stop.is_set():
                self._failed(_describe(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    def _failed(self, message: str) -> None:
        self._client = None
        self._failed_at = time.monotonic()
        self.last_error = message
        log.warning("tools server %s failed: %s", self.settings.name, message)

    async def call(self, remote_name: str, arguments: dict[str, Any], timeout_s: float) -> Any:
        """Call a tool; the mcp_types.CallToolResult, or ToolError. Cancelling the caller
        cancels the call on the server (notifications/cancelled)."""
        try:
            client = await self.ensure()
        except ToolError as exc:
            raise ToolError("unavailable", exc.message) from None
        try:
            async with asyncio.timeout(timeout_s):
                return await client.call_tool(remote_name, arguments)
        except TimeoutError:
            raise ToolError("timeout", f"the {remote_name} tool did not answer within "
                            f"{timeout_s:g} s") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from mcp.shared.exceptions import MCPError
            from mcp_types import CONNECTION_CLOSED

            if isinstance(exc, MCPError) and exc.code != CONNECTION_CLOSED:
                # The server answered with an error (unknown tool, invalid arguments ...).
                raise ToolError("error", f"the {remote_name} tool failed: {exc.error.message}"
                                ) from None
            self._failed(_describe(exc))  # the connection broke: reconnect next time
            raise ToolError("unavailable", f"tools server '{self.settings.name}' failed "
                            f"during {remote_name}: {_describe(exc)}") from None

    async def _shutdown_owner(self) -> None:
        owner, self._owner = self._owner, None
        if self._stop is not None:
            self._stop.set()
        if owner is None:
            return
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(owner)
        except (TimeoutError, Exception):
            owner.cancel()
            with contextlib.suppress(BaseException):
                await owner
        self._client = None

    async def close(self) -> None:
        await self._shutdown_owner()


class ToolManager:
    """Every configured server, with the tools the config allows, under unique names."""

    def __init__(self, settings: ToolSettings):
        self.settings = settings
        self.connections = {s.name: McpConnection(s, settings.reconnect_after_s)
                            for s in settings.servers}
        self._tools: dict[str, McpTool] = {}
        self._attempted = False
        self.problems: list[str] = []  # of the last connect(), one line per server
        self._reconnecting: asyncio.Task[list[str]] | None = None

    async def connect(self) -> list[str]:
        """Connect every server not yet connected; the problems, one line each (the
        others still work)."""
        self._attempted = True
        problems = []
        for connection in self.connections.values():
            try:
                await connection.ensure()
            except ToolError as exc:
                # While waiting to reconnect, the problem is still the last one (the same
                # words, so a call is not told twice).
                problems.append(connection.last_error if exc.kind == "waiting" else exc.message)
        self.problems = problems
        self._index()
        return problems

    def _index(self) -> None:
        tools: dict[str, McpTool] = {}
        for server, connection in self.connections.items():
            if not connection.connected:
                continue
            for tool in connection.tools:
                if not connection.settings.allows(tool.name):
                    continue
                name = tool.name if tool.name not in tools else f"{server}_{tool.name}"
                tools[name] = McpTool(server, name, tool.name, tool.description or "",
                                      dict(tool.input_schema or {}))
        self._tools = tools

    async def tools(self) -> list[McpTool]:
        """The tools to offer now. The first time, it connects and waits; later a server
        that is down is left out and reconnected in the background, so a turn never waits
        for a server that hangs."""
        if not self._attempted:
            for problem in await self.connect():
                log.warning("%s", problem)
        elif any(not c.connected for c in self.connections.values()) and (
                self._reconnecting is None or self._reconnecting.done()):
            self._reconnecting = asyncio.get_running_loop().create_task(self.connect())
        self._index()
        return list(self._tools.values())

    def find(self, name: str) -> McpTool | None:
        return self._tools.get(name)

    def settings_of(self, tool: McpTool) -> McpServerSettings:
        return self.connections[tool.server].settings

    async def call(self, tool: McpTool, arguments: dict[str, Any]) -> Any:
        settings = self.settings_of(tool)
        return await self.connections[tool.server].call(
            tool.remote_name, arguments, settings.timeout_for(tool.remote_name))

    async def aclose(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(BaseException):
                await self._reconnecting
        for connection in self.connections.values():
            await connection.close()
