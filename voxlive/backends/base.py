"""The three model interfaces every backend implements.

STT and TTS are blocking by design: the runtime runs them in a thread pool, so a
backend author writes plain synchronous code and cannot block the event loop by
accident. The LLM interface is asynchronous because its production backend is a
network stream (vLLM) and cancelling a reply means closing that stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import numpy as np

ChatMessage = dict[str, str]
"""One OpenAI-style chat message: {"role": "system" | "user" | "assistant", "content": ...}."""


class BackendError(RuntimeError):
    """A model stage failed; the message is meant for the user and the `error` event."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


class SpeechToText(Protocol):
    description: str

    def transcribe(self, audio: np.ndarray) -> str:
        """Transcribe 16 kHz mono float32 audio. Blocking."""
        ...


class LanguageModel(Protocol):
    description: str

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]:
        """Stream the reply's text pieces. Closing the iterator (aclose) cancels generation."""
        ...

    async def aclose(self) -> None: ...


class TextToSpeech(Protocol):
    description: str
    sample_rate: int

    def synthesize(self, text: str, style: str = "default") -> Iterator[np.ndarray]:
        """Yield float32 mono chunks at `sample_rate`. Blocking; stop iterating to cancel.

        `style` is one of voxlive.emotion.style.ReplyStyle: "default", "cheerful", "calm".
        """
        ...
