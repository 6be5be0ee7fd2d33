"""Scripted FAKES of the four model stages (VAD, STT, LLM, TTS), for the session's timeline tests.

These are fakes, not models: they let a unit test drive a whole CallSession (the turn
core, the reply objects, the barge-in glue, the history) without loading a model, opening
WebRTC or sleeping. What each one does is written by the test:
- FakeVad hears a voice wherever the input is loud (speech() feeds a loud block, silence()
  a quiet one), so the test writes the VAD's timeline as audio.
- FakeStt answers each transcription with the next scripted text.
- FakeLlm streams scripted pieces; a GATE piece waits until the test opens it; it records
  every prompt it was given and whether the stream was closed (a cancelled reply).
- FakeTts makes a loud tone of a fixed length per word, and records what it synthesised
  and whether a reply was paused at that moment.
The real backends have their own tests (test_backends_embedded.py and others).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxlive.audio.resample import MODEL_RATE
from voxlive.audio.vad import WINDOW
from voxlive.backends.base import Transcript

LOUD = 0.3
"""The amplitude of fake speech (input) and fake synthesis (output)."""
GATE = object()
"""A FakeLlm piece: the stream waits here until the test calls `llm.open_gate()`."""


class FakeVadStream:
    def __init__(self) -> None:
        self._pending = np.zeros(0, np.float32)

    def process(self, samples: np.ndarray) -> list[float]:
        """One probability per 512-sample window: 0.9 where the window is loud, else 0.02."""
        self._pending = np.concatenate([self._pending, samples.astype(np.float32)])
        out = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            out.append(0.9 if float(np.abs(window).max()) >= LOUD / 2 else 0.02)
        return out


class FakeVad:
    description = "fake vad (loud = voice)"

    def stream(self) -> FakeVadStream:
        return FakeVadStream()


@dataclass
class FakeStt:
    """Answers transcriptions with `script`, in order ("" once it runs out), at
    `confidence` unless the entry is a Transcript of its own; an exception in the script
    is raised instead. While `gate` is cleared, a transcription waits."""

    script: list[str | Transcript | Exception] = field(default_factory=list)
    confidence: float = 0.9
    heard: list[float] = field(default_factory=list)  # seconds of audio of each request
    told: list[str | None] = field(default_factory=list)  # the call's language, each request
    answered: list[str | Transcript | Exception] = field(default_factory=list)  # in order
    gate: threading.Event = field(default_factory=threading.Event)
    description: str = "fake stt (scripted)"

    def __post_init__(self) -> None:
        self.gate.set()

    def recognise(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        self.heard.append(len(audio) / MODEL_RATE)
        self.told.append(language)
        self.gate.wait(timeout=30)  # a worker thread: the test opens it
        text = self.script.pop(0) if self.script else ""
        self.answered.append(text)
        if isinstance(text, Exception):
            raise text
        return text if isinstance(text, Transcript) else Transcript(text, self.confidence)

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text


class FakeLlm:
    """Streams the next script of `replies` (a list of pieces, GATE among them)."""

    description = "fake llm (scripted)"
    supports_tools = False

    def __init__(self, *replies: list[Any]):
        self.replies = list(replies)
        self.prompts: list[list[dict[str, Any]]] = []
        self.closed: list[bool] = []  # per stream: closed before its last piece
        self._gate = asyncio.Event()

    def open_gate(self) -> None:
        self._gate.set()

    def stream(self, messages: list[dict[str, Any]],
               tools: list[dict[str, Any]] | None = None) -> AsyncIterator[str]:
        self.prompts.append([dict(m) for m in messages])
        pieces = self.replies.pop(0) if self.replies else ["Okay."]
        index = len(self.closed)
        self.closed.append(True)
        return self._pieces(pieces, index)

    async def _pieces(self, pieces: list[Any], index: int) -> AsyncIterator[str]:
        for piece in pieces:
            if piece is GATE:
                await self._gate.wait()
                self._gate.clear()
                continue
            yield piece
        self.closed[index] = False  # all of it went out

    async def aclose(self) -> None:
        return None


class FakeTts:
    """A loud tone of `seconds_per_word` per word, at 16 kHz, in one chunk."""

    description = "fake tts (a tone per word)"
    sample_rate = MODEL_RATE

    def __init__(self, seconds_per_word: float = 0.1,
                 paused: Callable[[], bool] | None = None):
        self.seconds_per_word = seconds_per_word
        self.paused = paused  # set by the test: is a reply paused right now?
        self.said: list[tuple[str, bool]] = []  # (sentence, a reply was paused then)

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        self.said.append((text, self.paused() if self.paused is not None else False))
        samples = int(len(text.split()) * self.seconds_per_word * MODEL_RATE)
        yield np.full(samples, LOUD, np.float32)
