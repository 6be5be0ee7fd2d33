"""The three model interfaces every backend implements.

STT and TTS are blocking by design: the runtime runs them in a thread pool, so a
backend author writes plain synchronous code and cannot block the event loop by
accident. The LLM interface is asynchronous because its production backend is a
network stream (vLLM) and cancelling a reply means closing that stream.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

ChatMessage = dict[str, Any]
"""One OpenAI-style chat message: {"role": "system" | "user" | "assistant", "content": ...}."""


@dataclass(frozen=True)
class ToolCall:
    """The model asks the runtime to do something (such as look through the camera)."""

    name: str
    arguments: str  # JSON text
    id: str = ""


def backend_api_key(stage: str, value: str) -> str:
    """The key a backend sends to its server: `value`, or the one an `env:NAME` or
    `file:PATH` source names (voxlive/config/secrets.py), so that no key need be written
    in models.yaml; a source that names nothing is this stage's clear error."""
    from voxlive.config.secrets import AuthSetupError, resolve_api_key

    try:
        return resolve_api_key(value)
    except AuthSetupError as exc:
        raise BackendError(stage, f"api_key: {exc}") from None


class BackendError(RuntimeError):
    """A model stage failed; the message is meant for the user and the `error` event."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float  # 0..1; whisper: exp(mean token log-probability)
    language: str | None = None
    """Set where the STT chose another language than the profile's (the multilingual
    fallback, stt_languages.py); None: the profile's own."""


WHISPER_OUTRO = re.compile(
    r"thanks? (you )?((so|very) much )?for watching|see you (in|on) the next video"
    r"|(please )?subscribe to (my|our|the) channel|please subscribe|subtitles by|amara\.org",
    re.IGNORECASE)
"""The end of a video, as Whisper learnt it from subtitles: what it writes for speech
it cannot make out, never what a caller says to an assistant."""


def without_outro(transcript: Transcript) -> Transcript:
    """The transcript, or no words when it holds Whisper's video outro ("Thank you for
    watching"): a turn of it is then a noise, not answered. Applied where a transcript
    becomes the user's words (reply_work.py, the Realtime push-to-talk item), whatever
    the STT backend. tiny.en wrote "Thank you for
    watching, we will see you in the next video." for espeak-ng's French "Combien de jours
    y a-t-il dans une semaine ?", and the assistant said "You're welcome!"."""
    if WHISPER_OUTRO.search(transcript.text):
        return Transcript("", 0.0)
    return transcript


def whisper_confidence(segments: Iterable[tuple[str, float | None]]) -> float | None:
    """How sure Whisper is of a transcript: exp of its segments' avg_logprob, the mean
    weighted by each segment's text length; None when no segment has a log-probability.

    Whisper answers a cough or an "mm-hm" with invented words at a low log-probability, so
    barge-in uses this to tell words from hums; the local (faster-whisper) and the remote
    (a server's verbose_json segments) STT compute it alike, here.
    """
    weighted = 0.0
    total = 0
    for text, logprob in segments:
        if not isinstance(logprob, int | float) or not math.isfinite(logprob):
            continue
        weight = max(1, len(str(text).strip()))
        weighted += weight * float(logprob)
        total += weight
    if not total:
        return None
    return min(1.0, max(0.0, math.exp(weighted / total)))


class SpeechToText(Protocol):
    description: str

    def recognise(self, audio: np.ndarray) -> Transcript:
        """Transcribe 16 kHz mono float32 audio, with a confidence. Blocking."""
        ...

    def transcribe(self, audio: np.ndarray) -> str:
        """Just the text of `recognise`."""
        ...


class LanguageModel(Protocol):
    description: str
    supports_tools: bool
    """Whether `stream` takes `tools` and may yield ToolCall (the `look` tool, MCP tools)."""

    def stream(self, messages: list[ChatMessage],
               tools: list[dict] | None = None) -> AsyncIterator[str | ToolCall]:
        """Stream the reply's text pieces (and tool calls, where the backend supports
        tools: `supports_tools`). Closing the iterator (aclose) cancels generation."""
        ...

    def warm_up(self) -> None:
        """Blocking, once at start-up: initialise what the first caller would wait for
        (llama.cpp's lazy set-up); a no-op where there is nothing to initialise."""
        ...

    async def aclose(self) -> None: ...


class TextToSpeech(Protocol):
    description: str
    sample_rate: int

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Yield float32 mono chunks at `sample_rate`. Blocking; stop iterating to cancel.

        `style` is one of voxlive.emotion.style.ReplyStyle: "default", "cheerful", "calm".
        `stop`, set from another thread, asks the synthesis to stop as soon as it can, even
        while the reader waits for a chunk (a barge-in frees a GPU at once, not a chunk
        later); a backend that makes a sentence in one call checks it between calls.
        """
        ...
