"""The HTTP server's sockets: a connection cap and a deadline for each request's headers.

aiohttp's server has a keep-alive timeout but none for a request that never finishes
arriving, and no connection cap: about 1,000 idle or slowly-sent sockets took every
file descriptor of a daemon under systemd's default limit of 1,024, and /healthz
stopped answering. `ConnectionGuard` wraps aiohttp's protocol factory (the runner's
`server`) so that:
- a connection must begin a request within `header_timeout_s` of connecting or of its
  last response, or it is closed (a slow-loris socket sends headers byte by byte);
- at most `max_connections` are open (kept below the process's file limit); a new one
  past the cap evicts the oldest idle connection (no request in progress), so a flood
  of idle sockets cannot lock out /healthz or a real caller; with none idle it is refused.
`guard_middleware` tells the guard when a request is being handled. Accept errors
logged by asyncio are rate-limited (`quiet_accept_errors`), so the log stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from voxlive.server.guards import LogLimiter

log = logging.getLogger(__name__)
FD_MARGIN = 128
"""File descriptors kept back from the cap for calls (UDP sockets), models and logs."""


def fd_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _GuardedProtocol(asyncio.Protocol):
    """Forwards to aiohttp's RequestHandler; closes it when its header deadline passes."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol):
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.active = 0  # requests being handled
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.guard.admit(self):
            self._refused = True
            transport.abort()
            return
        self.transport = transport
        self.inner.connection_made(transport)
        self.arm()

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self.disarm()
        self.guard.forget(self)
        self.inner.connection_lost(exc)

    def arm(self) -> None:
        self.disarm()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.guard.header_timeout_s, self._expire)

    def disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.active == 0 and self.transport is not None:
            self.guard.timed_out += 1
            self.transport.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ConnectionGuard:
    """Stands in for aiohttp's `Server` as the protocol factory; forwards the rest."""

    def __init__(self, server: Any, max_connections: int, header_timeout_s: float):
        self.server = server
        self.max_connections = max(4, min(max_connections, fd_limit() - FD_MARGIN))
        self.header_timeout_s = header_timeout_s
        self.open: dict[_GuardedProtocol, None] = {}  # insertion order: oldest first
        self.by_inner: dict[int, _GuardedProtocol] = {}
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def __call__(self) -> asyncio.Protocol:
        return _GuardedProtocol(self, self.server())

    def __getattr__(self, name: str) -> Any:  # shutdown(), connections ... of aiohttp's Server
        return getattr(self.server, name)

    def admit(self, protocol: _GuardedProtocol) -> bool:
        if len(self.open) >= self.max_connections:
            idle = next((p for p in self.open if p.active == 0), None)
            if idle is None:
                self.refused += 1
                return False
            self.evicted += 1
            self.forget(idle)
            idle.close()
        self.open[protocol] = None
        self.by_inner[id(protocol.inner)] = protocol
        return True

    def forget(self, protocol: _GuardedProtocol) -> None:
        self.open.pop(protocol, None)
        self.by_inner.pop(id(protocol.inner), None)

    def stats(self) -> dict[str, int]:
        return {"open": len(self.open), "limit": self.max_connections, "evicted": self.evicted,
                "refused": self.refused, "timed_out": self.timed_out}


GUARDS = web.AppKey("connection_guards", list)
"""Set to [] when the app is built; `install` appends (the app is frozen by then)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Marks the connection busy while its request is handled (no header deadline then)."""
    guards = request.app.get(GUARDS) or ()
    protocol = next((p for g in guards if (p := g.by_inner.get(id(request.protocol)))), None)
    if protocol is None:
        return await handler(request)
    protocol.active += 1
    protocol.disarm()
    try:
        return await handler(request)
    finally:
        protocol.active -= 1
        if protocol.active == 0:
            protocol.arm()  # the next request's headers have their own deadline


def install(runner: web.AppRunner, max_connections: int, header_timeout_s: float
            ) -> ConnectionGuard:
    """Put a guard in front of a set-up runner's server (before its sites start)."""
    server = runner.server
    if server is None:
        raise RuntimeError("set the runner up first")
    guard = ConnectionGuard(server, max_connections, header_timeout_s)
    runner._server = guard  # type: ignore[assignment]  # sites take runner.server as factory
    runner.app[GUARDS].append(guard)
    quiet_accept_errors()
    return guard


class _RateLimitFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.limiter = LogLimiter(period_s=5.0)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        return self.limiter.should_log(str(record.msg)[:80])


def quiet_accept_errors() -> None:
    """asyncio logs every failed accept() (fds exhausted) at ERROR: once per 5 s."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _RateLimitFilter) for f in logger.filters):
        logger.addFilter(_RateLimitFilter())
