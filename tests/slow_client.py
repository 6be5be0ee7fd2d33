"""A client that starts a request and never finishes it: what the body deadline is for."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


async def answer_to_unfinished_body(url: str, path: str, content_type: str, start: bytes,
                                    timeout_s: float = 10) -> bytes:
    """The first bytes the server answers to a POST of `path` that promises 5,000 bytes
    of body and sends only `start`."""
    where = urlsplit(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {where.hostname}\r\nContent-Type: "
                     f"{content_type}\r\nContent-Length: 5000\r\n\r\n".encode() + start)
        return await asyncio.wait_for(reader.read(200), timeout_s)
    finally:
        writer.close()
