"""Speech-to-text on an OpenAI-compatible transcription server (vLLM serving Whisper).

Why remote: on a GPU machine the card that runs the LLM under vLLM can run Whisper too,
so the daemon itself needs no CUDA stack. The request is the one OpenAI documents for
POST {base_url}/audio/transcriptions: multipart/form-data with the audio as a 16 kHz
mono 16-bit WAV file and the fields model, language, temperature and response_format.

Confidence: `verbose_json` answers carry segments with `avg_logprob`; the confidence is
exp(mean avg_logprob), the mean weighted by each segment's text length, exactly as the
local faster-whisper backend computes it (barge-in uses it to tell words from hums).
Servers that refuse `verbose_json` (vLLM before it supported it answers 400, "only
support response_format `text` or `json`") are asked for `json` from then on; an answer
without segments gets DEFAULT_CONFIDENCE, and an empty transcript gets 0.

Only the standard library is used (no new dependency). http.client rather than
urllib.request.urlopen, because urlopen's timeout applies to each socket operation,
while `timeout_s` here bounds the whole request, connect to last byte: a slow server
costs at most about timeout_s, never a hang. Every failure is a
BackendError("stt", message) that says what to check.
"""

from __future__ import annotations

import http.client
import io
import json
import math
import socket
import time
import uuid
import wave
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from voxlive.backends.base import BackendError, Transcript
from voxlive.config import RemoteStt

STAGE = "stt"
SAMPLE_RATE = 16_000
DEFAULT_CONFIDENCE = 0.8
"""Confidence of a transcript whose server gives no log-probabilities: above the default
barge_in_min_confidence (0.45), so words still confirm an interruption; a hum then
counts as words, since without log-probabilities they cannot be told apart."""
EXCERPT_CHARS = 300


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
    """A multipart/form-data body and its Content-Type header (the stdlib has no encoder)."""
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
    weighted = 0.0
    total = 0
    for segment in payload.get("segments") or []:
        if not isinstance(segment, dict):
            continue
        logprob = segment.get("avg_logprob")
        if not isinstance(logprob, int | float) or not math.isfinite(logprob):
            continue
        weight = max(1, len(str(segment.get("text", "")).strip()))
        weighted += weight * float(logprob)
        total += weight
    if not total:
        return DEFAULT_CONFIDENCE
    return min(1.0, max(0.0, math.exp(weighted / total)))


class RemoteSTT:
    """SpeechToText over HTTP. Blocking, like every STT backend: the runtime calls it in
    a thread. Thread-safe: each call opens its own connection."""

    def __init__(self, config: RemoteStt):
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.url = f"{self.base_url}/audio/transcriptions"
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(
                STAGE, f"stt.base_url must be an http:// or https:// URL, not {config.base_url!r}"
            )
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path
        self.description = f"remote {config.model} at {self.base_url}"
        # Flips to "json" once the server refuses verbose_json, so that costs one request.
        self.response_format = "verbose_json"

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

    # --- HTTP -----------------------------------------------------------------------------

    def _recognise(self, wav: bytes, response_format: str) -> Transcript:
        fields = {"model": self.config.model, "response_format": response_format,
                  "temperature": "0"}
        if self.config.language:
            fields["language"] = self.config.language
        body, content_type = multipart(fields, "file", "audio.wav", wav, "audio/wav")
        status, reason, headers, raw = self._post(body, content_type)
        text_body = raw.decode("utf-8", errors="replace")
        if status >= 400:
            if status in (400, 422) and response_format != "json" and (
                "response_format" in text_body or response_format in text_body
            ):
                raise _FormatRefused(self._http_error(status, reason, text_body))
            raise BackendError(STAGE, self._http_error(status, reason, text_body))
        if "json" not in headers.get("content-type", "") and not text_body.lstrip().startswith(
            "{"
        ):
            text = text_body.strip()  # a server that answers text/plain
            return Transcript(text, DEFAULT_CONFIDENCE if text else 0.0)
        try:
            payload = json.loads(text_body)
        except json.JSONDecodeError:
            raise BackendError(
                STAGE, f"the STT server at {self.base_url} answered something that is not "
                f"JSON: {_excerpt(text_body)}"
            ) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            raise BackendError(
                STAGE, f"the STT server at {self.base_url} answered without a 'text' field: "
                f"{_excerpt(text_body)}"
            )
        text = payload["text"].strip()
        return Transcript(text, confidence_of(payload, text))

    def _post(self, body: bytes, content_type: str
              ) -> tuple[int, str, dict[str, str], bytes]:
        """POST within one overall deadline of timeout_s; returns status, reason, headers
        (lower-case names) and body."""
        timeout = self.config.timeout_s
        deadline = time.monotonic() + timeout
        connection_class = (http.client.HTTPSConnection if self._scheme == "https"
                            else http.client.HTTPConnection)
        connection = connection_class(self._host, self._port, timeout=timeout)
        try:
            connection.connect()
            _set_deadline(connection, deadline)
            connection.putrequest("POST", self._path)
            connection.putheader("Content-Type", content_type)
            connection.putheader("Content-Length", str(len(body)))
            connection.putheader("Authorization", f"Bearer {self.config.api_key}")
            connection.putheader("Accept", "application/json")
            connection.endheaders(body)
            _set_deadline(connection, deadline)
            response = connection.getresponse()
            chunks: list[bytes] = []
            while True:
                _set_deadline(connection, deadline)
                chunk = response.read1(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, response.reason, headers, b"".join(chunks)
        except TimeoutError:
            raise BackendError(
                STAGE, f"the STT server at {self.base_url} did not answer within "
                f"{timeout:g} s (stt.timeout_s); it may be overloaded or still loading "
                "the model"
            ) from None
        except ConnectionRefusedError:
            raise BackendError(
                STAGE, f"cannot reach the STT server at {self.base_url}: connection refused; "
                "is the server (vLLM serving a Whisper model) running? Check stt.base_url "
                "in models.yaml"
            ) from None
        except socket.gaierror as exc:
            raise BackendError(
                STAGE, f"cannot reach the STT server at {self.base_url}: unknown host "
                f"{self._host!r} ({exc}); check stt.base_url in models.yaml"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise BackendError(
                STAGE, f"the connection to the STT server at {self.base_url} failed "
                f"({type(exc).__name__}: {exc}); is it running, and is stt.base_url right?"
            ) from None
        finally:
            connection.close()

    def _http_error(self, status: int, reason: str, body: str) -> str:
        detail = body
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, dict) and error.get("message"):
                detail = str(error["message"])
            elif isinstance(error, str):
                detail = error
            elif payload.get("message"):
                detail = str(payload["message"])
        hint = ""
        if status == 404:
            hint = (f" (stt.model is '{self.config.model}': does the server serve it, and "
                    "does it offer /audio/transcriptions?)")
        elif status in (401, 403):
            hint = " (check stt.api_key in models.yaml)"
        message = f"the STT server at {self.base_url} answered HTTP {status} {reason}".rstrip()
        if detail.strip():
            message += f": {_excerpt(detail)}"
        return message + hint


def _set_deadline(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Give the next socket operation only what is left of the request's time."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    if connection.sock is not None:
        connection.sock.settimeout(remaining)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
