"""A whole CallSession on the scripted fakes (tests/fakes.py), driven by a manual clock.

Input time is the audio the test feeds (32 ms blocks, loud or quiet: the fake VAD's
timeline); output time is the frames the test pulls from the session's output, one 20 ms
tick per `next_frame()`, as a transport would. Nothing sleeps: a test that needs the
session's background work (the fake STT, LLM and TTS in their tasks and threads) waits
for the event that work sends, with a guard against hanging, never a timed assertion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.fakes import LOUD, FakeLlm, FakeStt, FakeTts, FakeVad
from voxlive.audio.resample import MODEL_RATE
from voxlive.audio.vad import WINDOW
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.session import CallSession

HANG_GUARD_S = 20.0
"""How long `until` waits before it calls the test failed: a hang, never a speed check."""


class SessionTimeline:
    def __init__(self, config: VoxliveConfig, stt: list[Any], llm: list[list[Any]],
                 **turn: Any):
        # The real echo guard correlates the input with the reply played; the fakes' tones
        # would fool it, so the echo cases here go through the transcript (echo_words).
        settings = config.turn.model_copy(update={"echo_guard": False, **turn})
        config = config.model_copy(update={"turn": settings})
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self.stt, self.llm = FakeStt(list(stt)), FakeLlm(*llm)
        self.tts = FakeTts(paused=lambda: self.session.paused_reply() is not None)
        models = Models(vad=FakeVad(), stt=self.stt, llm=self.llm, tts=self.tts)  # type: ignore[arg-type]
        self.session = CallSession(models, config, 0.5, self._sink)

    def _sink(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    # --- input: the fake VAD's timeline ----------------------------------------------

    async def audio(self, seconds: float, level: float) -> None:
        for _ in range(round(seconds * MODEL_RATE / WINDOW)):
            await self.session.feed(np.full(WINDOW, level, np.float32))

    async def burst(self, *parts: tuple[float, float]) -> None:
        """(seconds, level) parts fed as one block: frames that arrived together after a
        stall, analysed in one VAD run, so the core sees them in one go."""
        await self.session.feed(np.concatenate(
            [np.full(round(s * MODEL_RATE / WINDOW) * WINDOW, level, np.float32)
             for s, level in parts]))

    async def speech(self, seconds: float) -> None:
        await self.audio(seconds, LOUD)

    async def silence(self, seconds: float) -> None:
        await self.audio(seconds, 0.0)

    # --- output: the transport's 20 ms ticks ----------------------------------------

    def play(self, frames: int) -> list[bool]:
        """Pull `frames` output frames; True for each that carried sound."""
        return [bool(self.session.output.next_frame().any()) for _ in range(frames)]

    def play_until(self, kind: str, limit: int = 2000) -> int:
        """Pull frames until an event of `kind` is sent; returns how many it took."""
        mark = len(self.events)
        for count in range(1, limit + 1):
            self.session.output.next_frame()
            if any(e["type"] == kind for e in self.events[mark:]):
                return count
        raise AssertionError(f"no {kind} event in {limit} frames")

    # --- events -----------------------------------------------------------------------

    async def until(self, match: Callable[[dict[str, Any]], bool] | str,
                    since: int = 0) -> dict[str, Any]:
        """The first event since index `since` that matches (a type, or a predicate)."""
        test = (lambda e: e["type"] == match) if isinstance(match, str) else match

        async def wait() -> dict[str, Any]:
            while True:
                found = [e for e in self.events[since:] if test(e)]
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(wait(), HANG_GUARD_S)

    async def transcribed(self, count: int) -> None:
        """The fake STT has answered `count` transcriptions (its worker threads run in no
        set order: a test that scripts them in order lets each finish first)."""

        async def wait() -> None:
            while len(self.stt.answered) < count:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(wait(), HANG_GUARD_S)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def reply_made(self, turn: int) -> dict[str, Any]:
        """The reply of `turn` is made: all its audio is queued."""
        return await self.until(lambda e: e["type"] == "assistant_text" and e["final"]
                                and e["turn"] == turn)

    async def close(self) -> None:
        await self.session.close()
