"""An example MCP server for voxlive: a clock that knows time zones, and a notepad.

    python -m voxlive.tools.examples.clock_notes                  # stdio (models.yaml: command)
    python -m voxlive.tools.examples.clock_notes --http 8765      # streamable HTTP on 127.0.0.1
    python -m voxlive.tools.examples.clock_notes --notes notes.json  # keep notes in a file

Written with the official MCP SDK (`pip install 'voxlive[tools]'`), like any third-party
server: voxlive knows nothing about it beyond its entry in the `tools:` section.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("voxlive-clock-notes", instructions="A clock with time zones and a notepad.")
_notes: list[str] = []
_notes_file: Path | None = None

# The city names people say, for the zones whose IANA name is not the city.
ALIASES = {"new york": "America/New_York", "san francisco": "America/Los_Angeles",
           "beijing": "Asia/Shanghai", "mumbai": "Asia/Kolkata", "delhi": "Asia/Kolkata"}


def _zone(place: str) -> ZoneInfo:
    name = ALIASES.get(place.strip().lower(), place.strip())
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    wanted = name.lower().replace(" ", "_")
    for zone in sorted(available_timezones()):
        if zone.lower().rsplit("/", 1)[-1] == wanted:
            return ZoneInfo(zone)
    raise ToolError(f"unknown time zone or city: {place!r} (try a name like Europe/Paris)")


@server.tool()
def current_time(timezone: str = "UTC") -> str:
    """The current date and time in a time zone (an IANA name such as Europe/Paris, or a
    city such as Tokyo)."""
    zone = _zone(timezone)
    now = datetime.now(zone)
    return f"In {timezone} it is {now:%H:%M} on {now:%A %d %B %Y} ({zone.key})."


@server.tool()
def add_note(text: str) -> str:
    """Write a note down for later."""
    _notes.append(text.strip())
    _save()
    return f"Noted. There are {len(_notes)} notes."


@server.tool()
def list_notes() -> str:
    """Read back the notes, oldest first."""
    if not _notes:
        return "There are no notes."
    return " ".join(f"Note {i}: {note}" for i, note in enumerate(_notes, 1))


@server.tool()
def clear_notes() -> str:
    """Delete every note."""
    count = len(_notes)
    _notes.clear()
    _save()
    return f"Deleted {count} notes."


def _save() -> None:
    if _notes_file is not None:
        _notes_file.write_text(json.dumps(_notes))


def main(argv: list[str] | None = None) -> None:
    global _notes_file
    parser = argparse.ArgumentParser(prog="clock_notes", description=__doc__.split("\n")[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--notes", type=Path, help="a JSON file that keeps the notes")
    args = parser.parse_args(argv)
    if args.notes is not None:
        _notes_file = args.notes
        if args.notes.exists():
            _notes.extend(json.loads(args.notes.read_text()))
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", host=args.host, port=args.http)


if __name__ == "__main__":
    main()
