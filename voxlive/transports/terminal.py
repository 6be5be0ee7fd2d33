"""The live transcript of `voxlive local` in the terminal, fed by the session's events."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, TextIO


class TranscriptPrinter:
    """Prints the conversation as it happens: "you: ...", "voxlive: ..." (growing as
    each sentence is synthesised), "[interrupted: heard ...]", errors (red on a tty).

    A turn is printed once it is committed (the user really stopped): a reply worked on
    while the user only paused, and dropped when they went on, never shows.
    """

    def __init__(self, out: TextIO | None = None, color: bool | None = None):
        self.out = out if out is not None else sys.stdout
        isatty = getattr(self.out, "isatty", None)
        self.color = bool(isatty and isatty()) if color is None else color
        self._committed: set[int] = set()
        self._user: dict[int, str] = {}  # transcripts of turns not yet committed
        self._reply: dict[int, tuple[str, bool]] = {}  # reply text of uncommitted turns
        self._open: tuple[int, str] | None = None  # the assistant line being printed

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        turn = event.get("turn")
        if kind == "user_transcript" and isinstance(turn, int):
            language = event.get("language")  # only where not the profile's
            text = f"[{language}] {event.get('text', '')}" if language else event.get("text", "")
            if turn in self._committed:
                self._line(f"{self._style('you:', '1')} {text}")
            else:
                self._user[turn] = text
        elif kind == "assistant_text" and isinstance(turn, int):
            text, final = event.get("text", ""), bool(event.get("final"))
            if turn in self._committed:
                self._assistant(turn, text, final)
            else:
                self._reply[turn] = (text, final)
        elif kind == "turn_committed" and isinstance(turn, int):
            self._commit(turn)
        elif kind == "interrupted":
            heard = event.get("heard_text") or ""
            self._close("…")
            self._line(self._style(f'[interrupted: heard "{heard}"]', "2"))
        elif kind == "error":
            stage = event.get("stage")
            where = f" ({stage})" if stage else ""
            self.error(f"error{where}: {event.get('message', '')}")

    def _commit(self, turn: int) -> None:
        self._committed.add(turn)
        for old in [t for t in self._committed if t < turn - 8]:
            self._committed.discard(old)
        for pending in (self._user, self._reply):  # turns dropped before they were heard
            for old in [t for t in pending if t < turn]:
                del pending[old]
        if turn in self._user:
            self._line(f"{self._style('you:', '1')} {self._user.pop(turn)}")
        if turn in self._reply:
            self._assistant(turn, *self._reply.pop(turn))

    def _assistant(self, turn: int, text: str, final: bool) -> None:
        if self._open is None or self._open[0] != turn:
            self._close()
            self._write(f"{self._style('voxlive:', '1;36')} ")
            self._open = (turn, "")
        shown = self._open[1]
        delta = text[len(shown):] if text.startswith(shown) else f" {text}"
        self._write(delta.lstrip() if not shown else delta)
        self._open = (turn, text)
        if final:
            self._close()

    def notice(self, text: str) -> None:
        self._line(self._style(text, "2"))

    def error(self, text: str) -> None:
        self._line(self._style(text, "31"))

    def _line(self, text: str) -> None:
        self._close()
        self._write(text + "\n")

    def _close(self, mark: str = "") -> None:
        if self._open is not None:
            self._open = None
            self._write(mark + "\n")

    def _style(self, text: str, sgr: str) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if self.color else text

    def _write(self, text: str) -> None:
        with contextlib.suppress(ValueError, OSError):  # a closed or broken stdout
            self.out.write(text)
            self.out.flush()
