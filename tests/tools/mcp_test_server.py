"""A real MCP server for the tool tests (the official SDK's MCPServer), run as a subprocess:

    python -m tests.tools.mcp_test_server            # stdio
    python -m tests.tools.mcp_test_server --http PORT  # streamable HTTP on 127.0.0.1

Tools: `weather` (a fixed forecast per city), `slow` (sleeps; writes "started" and, when
the client cancels it, "cancelled" to the file in $MCP_TEST_LOG), `fail` (raises), `crash`
(the process exits at once), `picture` (a PNG image), `report` (a long text).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import zlib

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image

server = MCPServer("voxlive-test-tools")
FORECAST = {"paris": "sunny and 21 degrees", "london": "rainy and 14 degrees"}


def _log(line: str) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if path:
        with open(path, "a") as file:
            file.write(line + "\n")


@server.tool()
def weather(city: str) -> str:
    """Today's weather in a city."""
    _log(f"weather {city}")
    return f"The weather in {city} is {FORECAST.get(city.lower(), 'cloudy and 17 degrees')}."


@server.tool()
async def slow(seconds: float) -> str:
    """Takes its time."""
    _log("started")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _log("cancelled")
        raise
    _log("finished")
    return "The slow answer is forty-two."


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ToolError("the test tool failed on purpose")


@server.tool()
def crash() -> str:
    """The server process dies."""
    os._exit(3)


def red_png(width: int = 8, height: int = 6) -> bytes:
    """A small red PNG, made by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@server.tool()
def picture() -> Image:
    """Draws a picture."""
    return Image(data=red_png(), format="png")


@server.tool()
def report() -> str:
    """A long report."""
    return " ".join(f"Paragraph {i}: the quarterly figures rose by {i} percent." for i in
                    range(60))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None, help="streamable HTTP on this port")
    args = parser.parse_args()
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.http)


if __name__ == "__main__":
    main()
