"""Text-to-speech on an OpenAI-compatible streaming speech server (POST /v1/audio/speech).

Why remote: the daemon is the per-call edge (WebRTC, VAD, turn-taking: CPU work); the
voice model can live on a server built to scale (`voxlive serve-models` on Ray Serve, or
any server that speaks OpenAI's speech API), shared by many daemons and batched there.

The request is OpenAI's: {"model", "voice", "input", "response_format": "pcm", "speed"},
and the answer is raw 16-bit little-endian mono PCM at `sample_rate` (OpenAI: 24 kHz),
streamed (chunked): the first chunk plays while the server still speaks the rest.
The client is the official `openai` SDK (its streaming response), one per backend,
without retries: a sentence late by a retry is worse than an `error` event.

Cancelling (a barge-in) closes the HTTP stream: the server sees the disconnect and stops
synthesising. The reader stops at its next chunk (a server sends one every ~0.1 s of
audio), or at once when the stop flag is set before the next read. Every failure is a
BackendError("tts", message): the call reports an `error` event and goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from pydantic import Field

from voxlive.backends import openai_sdk as sdk
from voxlive.backends.base import BackendError, backend_api_key
from voxlive.backends.registry import Backend, Strict

STAGE = "tts"
READ_BYTES = 4_800
"""Bytes per read: 0.1 s of 24 kHz 16-bit audio, so a stop is seen within ~0.1 s."""
STYLE_SPEED = {"default": 1.0, "cheerful": 1.15, "calm": 0.85}
"""Reply style -> OpenAI's `speed` (0.25-4): the only style knob the API has."""


class RemoteTts(Strict):
    """An OpenAI-compatible streaming speech endpoint (POST /v1/audio/speech, pcm):
    `voxlive serve-models`, or any server that speaks that API."""

    backend: Literal["remote"]
    base_url: str = "http://127.0.0.1:8300/v1"
    model: str = "tts-1"
    voice: str = "default"
    api_key: str = Field("EMPTY", description="what the server wants: env:NAME or "
                         "file:PATH (never the key itself in models.yaml), or a placeholder")
    sample_rate: int = Field(24_000, ge=8_000, description="the server's pcm rate (OpenAI: 24 kHz)")
    connect_timeout_s: float = Field(3.0, gt=0)
    timeout_s: float = Field(10.0, gt=0, description="the longest wait for the first chunk, "
                             "or between two chunks")


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM -> float32 in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class RemoteTTS:
    """TextToSpeech over HTTP. Blocking, like every TTS backend (the runtime iterates it
    in a worker thread); the SDK client is thread-safe, so calls share it."""

    def __init__(self, config: RemoteTts):
        openai = sdk.load()  # missing, the loader names the extra (BACKEND below)
        if not config.base_url.startswith(("http://", "https://")):
            raise BackendError(
                STAGE, f"tts.base_url must be an http:// or https:// URL, not {config.base_url!r}")
        self.config = config
        self.sample_rate = config.sample_rate
        self.base_url = config.base_url.rstrip("/")
        self.description = f"remote {config.model} ({config.voice}) at {self.base_url}"
        timeout = openai.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self.client = openai.OpenAI(base_url=self.base_url,
                                    api_key=backend_api_key("tts", config.api_key),
                                    timeout=timeout, max_retries=0)

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        openai = sdk.load()
        odd = b""  # a chunk may end mid-sample
        try:
            with self.client.audio.speech.with_streaming_response.create(
                model=self.config.model, voice=self.config.voice, input=text,
                response_format="pcm", speed=STYLE_SPEED.get(style, 1.0),
            ) as response:
                for data in response.iter_bytes(READ_BYTES):
                    if stop is not None and stop.is_set():
                        return  # leaving the `with` closes the stream: the server stops
                    data = odd + data
                    cut = len(data) - len(data) % 2
                    odd = data[cut:]
                    if cut:
                        yield pcm16_to_float(data[:cut])
        except openai.APITimeoutError:
            raise BackendError(STAGE, self._timed_out()) from None
        except openai.APIConnectionError as exc:
            raise BackendError(STAGE, f"cannot reach the speech server at {self.base_url} "
                               f"({sdk.describe(exc)}); is it running (voxlive serve-models), and "
                               "is tts.base_url right?") from None
        except openai.APIStatusError as exc:
            raise BackendError(STAGE, f"the speech server at {self.base_url} answered HTTP "
                               f"{exc.status_code}: {_detail(exc)}") from None
        except Exception as exc:  # the HTTP library's errors mid-stream (a replica died, a cut)
            if _is_timeout(exc):
                raise BackendError(STAGE, self._timed_out()) from None
            raise BackendError(STAGE, f"the speech stream from {self.base_url} broke off "
                               f"({type(exc).__name__}: {exc})") from None

    def _timed_out(self) -> str:
        return (f"the speech server at {self.base_url} sent nothing for "
                f"{self.config.timeout_s:g} s (tts.timeout_s); it may be overloaded or still "
                "loading")


def _is_timeout(exc: BaseException) -> bool:
    """A read timeout of the SDK's HTTP library (httpx, or httpx2 in openai 3.x)."""
    return any(cls.__name__ == "TimeoutException" for cls in type(exc).__mro__)


def _detail(exc: Any) -> str:
    """The server's message from an OpenAI-style error body, else the body's start."""
    message = sdk.error_message(getattr(exc, "body", None))
    if message:
        return message[:300]
    response = getattr(exc, "response", None)
    try:
        return sdk.excerpt(response.text) if response is not None else str(exc)[:300]
    except Exception:  # noqa: BLE001 - a streamed body that was never read
        return str(exc)[:300]


BACKEND = Backend(
    stage="tts", name="remote", config=RemoteTts, factory=RemoteTTS, package="openai",
    install="pip install 'voxlive[openai]'  (the official openai SDK)", model_field=None,
)
