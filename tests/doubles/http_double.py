"""The lifecycle the HTTP test doubles share: an aiohttp app on loopback, started and
stopped (or used as an async context), that counts what its clients did.

A subclass adds its routes (`routes`) and its handlers; `start` after `stop` listens on the
same port again, so a test can take a "server" down and bring it back.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from aiohttp import web

HOST = "127.0.0.1"


class HttpDouble:
    def __init__(self, host: str = HOST):
        self.host = host
        self.requests: list[dict[str, Any]] = []  # each request body, in order
        self.aborted = 0  # streams the client closed before the end
        self.completed = 0  # streams sent whole
        self.abort_event = asyncio.Event()
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        """Listen on the host; on the same port again after stop(), else on a new one."""
        app = web.Application()
        self.routes(app)
        # handler_cancellation: a client that closes the stream cancels the handler, as
        # real servers abort the work.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port or 0)
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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
