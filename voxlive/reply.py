"""One reply: everything a call keeps about the answer to one user turn, in one object.

A reply is born when the turn core asks for a transcript (or the client ends a turn
itself) and ends in one place, `dispose`, when the core cuts it, forgets its turn (a
noise), or its last frame has been played. Before this object the same state lived in
four dicts keyed by generation in the session, the output's own per-reply table and a
sentinel key, each cleaned up by hand in three places.

What it holds: the turn's generation (the wire's `turn`), the work in flight for it (the
transcription, then the reply task), the user's words, the sentences spoken so far, the
timing stamps of the `turn_latency` event, the emotion heard and the voice style chosen
from it, and its audio (`Playback`, which holds the one copy of "paused" outside the core).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from voxlive.audio.output import AudioOutput, Playback
from voxlive.backends.base import BackendError
from voxlive.latency import TurnTiming

log = logging.getLogger(__name__)
Failed = Callable[[int, str, str], None]
"""(generation, stage, message) of a reply's work that failed."""


@dataclass(eq=False)
class Reply:
    generation: int
    timing: TurnTiming
    playback: Playback
    user_text: str | None = None  # set when the core says Respond
    heard_in: str | None = None  # the words' language, where not the profile's (Transcript)
    spoken: list[str] = field(default_factory=list)  # sentences said (or sent as text)
    emotion: Any = None  # voxlive.emotion.base.Emotion heard in the user's turn, or None
    style: str = "default"  # the voice style the reply is spoken in
    task: asyncio.Task[None] | None = None  # the transcription, then the reply's making
    holds_synthesis: bool = False  # while paused, no new sentence is synthesised

    @classmethod
    def new(cls, generation: int, timing: TurnTiming) -> Reply:
        return cls(generation, timing, Playback(generation))

    @property
    def text(self) -> str:
        """The reply's words so far, as said (the history's assistant turn)."""
        return " ".join(self.spoken)

    def pause(self, output: AudioOutput, hold_synthesis: bool) -> None:
        output.pause(self.playback)
        self.holds_synthesis = hold_synthesis

    def resume(self, output: AudioOutput) -> None:
        output.resume(self.playback)

    async def may_synthesise(self) -> None:
        """Wait while the reply is paused under the user's voice, when the core says so."""
        if self.holds_synthesis:
            await self.playback.playing.wait()

    def run(self, work: Coroutine[Any, Any, None], failed: Failed) -> None:
        """Start `work` as the reply's task (the one `dispose` cancels). A failing model is
        handed to `failed` with its stage; work cancelled before it ran is closed."""
        self.task = asyncio.get_running_loop().create_task(_guarded(self.generation, work,
                                                                    failed))
        self.task.add_done_callback(lambda _: work.close())

    def dispose(self, output: AudioOutput) -> None:
        """Stop its work (closing the LLM stream; TTS stops at its next chunk) and silence
        its audio from the next frame. The task that disposes its own reply runs on."""
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        self.task = None
        output.drop(self.playback)
        self.playback.resume()  # nothing of it plays again; nothing waits on it


async def _guarded(generation: int, work: Coroutine[Any, Any, None], failed: Failed) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except BackendError as exc:  # already says what failed (STT server down, ...)
        failed(generation, exc.stage, exc.message)
    except Exception as exc:
        log.exception("turn %d failed", generation)
        failed(generation, "pipeline", f"{type(exc).__name__}: {exc}")
