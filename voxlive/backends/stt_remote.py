"""Speech-to-text on an OpenAI-compatible transcription server (vLLM serving Whisper).

Why remote: on a GPU machine the card that runs the LLM under vLLM can run Whisper too,
so the daemon itself needs no CUDA stack. The request is the one OpenAI documents for
POST {base_url}/audio/transcriptions, made with the official openai SDK: the audio as a
16 kHz mono 16-bit WAV file and the fields model, language, temperature and
response_format.

Confidence: `verbose_json` answers carry segments with `avg_logprob`; the confidence is
exp(mean avg_logprob), the mean weighted by each segment's text length, exactly as the
local faster-whisper backend computes it (voxlive/backends/base.py: whisper_confidence;
barge-in uses it to tell words from hums). Servers that refuse `verbose_json` (vLLM
before it supported it answers 400, "only support response_format `text` or `json`")
are asked for `json` from then on; an answer without segments gets DEFAULT_CONFIDENCE,
and an empty transcript gets 0.

Timeouts: `timeout_s` bounds each step of the request (connecting, sending, every wait
for the answer's bytes): a server that does not answer costs timeout_s, never a hang.
No retries (the SDK's are off): a turn's transcript is wanted now or not at all, and a
server error must not be mistaken for a refused format. Every failure is a
BackendError("stt", message) that says what to check.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
import wave
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
from pydantic import Field

from voxlive.backends import openai_sdk as sdk
from voxlive.backends.base import BackendError, Transcript, backend_api_key, whisper_confidence
from voxlive.backends.registry import Backend, Strict

STAGE = "stt"
SAMPLE_RATE = 16_000
DEFAULT_CONFIDENCE = 0.8
"""Confidence of a transcript whose server gives no log-probabilities: above the default
barge_in_min_confidence (0.45), so words still confirm an interruption; a hum then
counts as words, since without log-probabilities they cannot be told apart."""


class RemoteStt(Strict):
    """An OpenAI-compatible transcription endpoint (vLLM serves Whisper at
    /v1/audio/transcriptions), so the GPU that runs the LLM can transcribe too."""

    backend: Literal["remote"]
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "openai/whisper-large-v3-turbo"
    api_key: str = Field("EMPTY", description="what the server wants: env:NAME or "
                         "file:PATH (never the key itself in models.yaml), or a placeholder")
    language: str | None = "en"
    timeout_s: float = Field(10.0, gt=0, description="each step of a request, at most")


class _FormatRefused(Exception):
    """The server does not do the response_format we asked for."""


def encode_wav(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV: what every Whisper server decodes without ffmpeg tricks."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def multipart(fields: dict[str, str], file_field: str, filename: str, content: bytes,
              content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type header (the stdlib has no encoder):
    the serve-models clients' (voxlive/serving/client.py) and their tests'."""
    boundary = f"voxlive-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def confidence_of(payload: dict[str, Any], text: str) -> float:
    """exp(length-weighted mean of the segments' avg_logprob), else DEFAULT_CONFIDENCE."""
    if not text.strip():
        return 0.0
    segments = [s for s in payload.get("segments") or [] if isinstance(s, dict)]
    confidence = whisper_confidence((str(s.get("text", "")), s.get("avg_logprob"))
                                    for s in segments)
    return DEFAULT_CONFIDENCE if confidence is None else confidence


class RemoteSTT:
    """SpeechToText over HTTP. Blocking, like every STT backend: the runtime calls it in
    a thread. Thread-safe: one SDK client (its connection pool) serves every thread."""

    def __init__(self, config: RemoteStt):
        self.config = config
        self.api_key = backend_api_key(STAGE, config.api_key)
        self.base_url = config.base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(
                STAGE, f"stt.base_url must be an http:// or https:// URL, not {config.base_url!r}"
            )
        self._host = parts.hostname
        self.description = f"remote {config.model} at {self.base_url}"
        # Flips to "json" once the server refuses verbose_json, so that costs one request.
        self.response_format = "verbose_json"
        self._client_lock = threading.Lock()
        # Made here, at load time: importing the SDK takes a second or more.
        self._client: Any = self._new_client()  # openai.OpenAI

    # --- SpeechToText ---------------------------------------------------------------------

    def recognise(self, audio: np.ndarray) -> Transcript:
        wav = encode_wav(audio)
        if self.response_format == "verbose_json":
            try:
                return self._recognise(wav, "verbose_json")
            except _FormatRefused:
                self.response_format = "json"
        try:
            return self._recognise(wav, self.response_format)
        except _FormatRefused as exc:
            raise BackendError(STAGE, str(exc)) from None

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- HTTP -----------------------------------------------------------------------------

    def _new_client(self) -> Any:
        openai = sdk.load()
        return sdk.warm(openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, max_retries=0,
            timeout=self.config.timeout_s,
            # No HTTP_PROXY: the server is where stt.base_url says.
            http_client=openai.DefaultHttpxClient(trust_env=False),
        ))

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:  # closed
                self._client = self._new_client()
            return self._client

    def _recognise(self, wav: bytes, response_format: str) -> Transcript:
        content_type, text_body = self._post(wav, response_format)
        if "json" not in content_type and not text_body.lstrip().startswith("{"):
            text = text_body.strip()  # a server that answers text/plain
            return Transcript(text, DEFAULT_CONFIDENCE if text else 0.0)
        try:
            payload = json.loads(text_body)
        except json.JSONDecodeError:
            raise BackendError(
                STAGE, f"the STT server at {self.base_url} answered something that is not "
                f"JSON: {sdk.excerpt(text_body)}"
            ) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            raise BackendError(
                STAGE, f"the STT server at {self.base_url} answered without a 'text' field: "
                f"{sdk.excerpt(text_body)}"
            )
        text = payload["text"].strip()
        return Transcript(text, confidence_of(payload, text))

    def _post(self, wav: bytes, response_format: str) -> tuple[str, str]:
        """The transcription request; returns the answer's content type and body text.
        The raw answer, not the SDK's parsed one: servers differ in what they send back
        (text/plain, json without segments), and each is read for what it has."""
        openai = sdk.load()

        fields: dict[str, Any] = {"model": self.config.model,
                                  "response_format": response_format, "temperature": 0}
        if self.config.language:
            fields["language"] = self.config.language
        try:
            raw = self._get_client().audio.transcriptions.with_raw_response.create(
                file=("audio.wav", wav, "audio/wav"), **fields)
            response = raw.http_response
            return response.headers.get("content-type", ""), response.text
        except openai.APIStatusError as exc:
            body = sdk.body_text(exc)
            if exc.status_code in (400, 422) and response_format != "json" and (
                "response_format" in body or response_format in body
            ):
                raise _FormatRefused(self._http_error(exc)) from None
            raise BackendError(STAGE, self._http_error(exc)) from None
        except openai.APITimeoutError:
            raise BackendError(
                STAGE, f"the STT server at {self.base_url} did not answer within "
                f"{self.config.timeout_s:g} s (stt.timeout_s); it may be overloaded or still "
                "loading the model"
            ) from None
        except openai.APIConnectionError as exc:
            if sdk.refused(exc):
                raise BackendError(
                    STAGE, f"cannot reach the STT server at {self.base_url}: connection "
                    "refused; is the server (vLLM serving a Whisper model) running? Check "
                    "stt.base_url in models.yaml"
                ) from None
            if sdk.unknown_host(exc):
                raise BackendError(
                    STAGE, f"cannot reach the STT server at {self.base_url}: unknown host "
                    f"{self._host!r} ({sdk.describe(exc)}); check stt.base_url in "
                    "models.yaml"
                ) from None
            raise BackendError(
                STAGE, f"the connection to the STT server at {self.base_url} failed "
                f"({sdk.describe(exc)}); is it running, and is stt.base_url right?"
            ) from None

    def _http_error(self, exc: Any) -> str:
        hint = ""
        if exc.status_code == 404:
            hint = (f" (stt.model is '{self.config.model}': does the server serve it, and "
                    "does it offer /audio/transcriptions?)")
        elif exc.status_code in (401, 403):
            hint = " (check stt.api_key in models.yaml)"
        return sdk.status_error(exc, f"STT server at {self.base_url}") + hint


BACKEND = Backend(
    stage="stt", name="remote", config=RemoteStt, factory=RemoteSTT, package="openai",
    install="pip install 'voxlive[openai]'  (the official openai SDK)", model_field=None,
)
