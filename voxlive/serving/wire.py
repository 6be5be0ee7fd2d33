"""The HTTP side shared by both runtimes: parsing requests, shaping answers, errors.

Framework-free (bytes and dicts in, bytes and dicts out), so the aiohttp app and the Ray
Serve ingress answer byte for byte alike. Bad input is a WireError with an OpenAI-style
error body ({"error": {"message", "type", "code"}}), never a 500.
"""

from __future__ import annotations

import io
import json
import math
import wave
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import numpy as np

from voxlive.audio.resample import MODEL_RATE, resample_once

MAX_INPUT_CHARS = 4_096  # OpenAI's limit for /v1/audio/speech
MAX_UPLOAD_BYTES = 25 * 2**20  # ... and for /v1/audio/transcriptions
MAX_AUDIO_S = 600
"""The longest upload heard: 25 MB of low-bitrate Opus or mp3 decodes to hours, and one
request would hold a batch slot of the STT for all of it (a daemon sends <= 30 s)."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""The largest image decoded: a 25 MB PNG of one colour can be 3 GB of pixels."""
SPEECH_FORMATS = ("pcm",)


class WireError(ValueError):
    """A request we refuse: its HTTP status and the message for the caller."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "code": self.status}}


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """multipart/form-data fields by name (files as their bytes), with the stdlib's parser."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise WireError(400, "expected multipart/form-data with a `file` field")
    if len(body) > MAX_UPLOAD_BYTES:
        raise WireError(413, f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True) or b""
    return fields


def decode_audio(data: bytes) -> np.ndarray:
    """An uploaded audio file as 16 kHz mono float32: WAV by the stdlib, anything else
    (mp3, ogg, webm, flac) through PyAV, which voxlive already carries."""
    if not data:
        raise WireError(400, "the `file` field is empty")
    try:
        if data[:4] == b"RIFF":
            return _decode_wav(data)
        return _decode_av(data)
    except WireError:
        raise
    except Exception as exc:
        raise WireError(400, f"cannot decode the audio file ({type(exc).__name__}: {exc})"
                        ) from None


def _too_long() -> WireError:
    return WireError(413, f"audio longer than {MAX_AUDIO_S} s")


def _decode_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2:
            raise WireError(400, "WAV files must be 16-bit PCM")
        rate, channels = wav.getframerate(), wav.getnchannels()
        if wav.getnframes() > MAX_AUDIO_S * rate:
            raise _too_long()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    audio = pcm.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0
    return audio if rate == MODEL_RATE else resample_once(audio, rate, MODEL_RATE)


def _decode_av(data: bytes) -> np.ndarray:
    import av

    chunks, samples = [], 0
    resampler = av.AudioResampler(format="flt", layout="mono", rate=MODEL_RATE)
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            samples += frame.samples * MODEL_RATE // max(1, frame.sample_rate)
            if samples > MAX_AUDIO_S * MODEL_RATE:
                raise _too_long()
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def decoded_upload(body: bytes, content_type: str, stage: str) -> Any:
    """The `file` field of an emotion (audio) or vision (image) upload, decoded.
    Blocking (up to about a second for 25 MB): call it from a worker thread."""
    data = upload(body, content_type)
    return decode_image(data) if stage == "vision" else decode_audio(data)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's or a JPEG's header, None for anything else: read
    before decoding, so that the size is refused before its pixels take memory."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            return (int.from_bytes(data[at + 7:at + 9], "big"),
                    int.from_bytes(data[at + 5:at + 7], "big"))
        at += 2 + length
    return None


def decode_image(data: bytes) -> np.ndarray:
    """An uploaded JPEG/PNG as an HxWx3 uint8 RGB array."""
    import cv2

    size = image_size(data)
    if size is None:
        raise WireError(400, "the `file` field is not a JPEG or PNG image")
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise WireError(413, f"the image is {size[0]}x{size[1]}: at most "
                        f"{MAX_IMAGE_PIXELS} pixels")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise WireError(400, "the `file` field is not an image OpenCV can decode (JPEG, PNG)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def transcription_answer(text: str, confidence: float, duration_s: float,
                         response_format: str) -> tuple[bytes, str]:
    """The body and content type OpenAI answers with; verbose_json carries the confidence
    as a segment's avg_logprob, which the daemon's `remote` STT reads back."""
    if response_format == "text":
        return text.encode(), "text/plain"
    if response_format == "json":
        return json.dumps({"text": text}).encode(), "application/json"
    if response_format != "verbose_json":
        raise WireError(400, f"response_format {response_format!r} is not supported; "
                        "use json, verbose_json or text")
    logprob = math.log(confidence) if confidence > 0 else -100.0
    segments = [{"id": 0, "start": 0.0, "end": round(duration_s, 3), "text": text,
                 "avg_logprob": logprob}] if text else []
    return json.dumps({"task": "transcribe", "duration": round(duration_s, 3), "text": text,
                       "segments": segments}).encode(), "application/json"


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    voice: str
    speed: float

    @property
    def style(self) -> str:
        """OpenAI's speed back to a voxlive reply style (the daemon's remote TTS sends
        1.15 for cheerful, 0.85 for calm)."""
        return "cheerful" if self.speed > 1.05 else "calm" if self.speed < 0.95 else "default"


def speech_request(body: bytes) -> SpeechRequest:
    try:
        data = json.loads(body or b"null")
    except json.JSONDecodeError:
        raise WireError(400, "the body must be JSON") from None
    if not isinstance(data, dict):
        raise WireError(400, "the body must be a JSON object")
    text = data.get("input")
    if not isinstance(text, str) or not text.strip():
        raise WireError(400, "`input` must be non-empty text")
    if len(text) > MAX_INPUT_CHARS:
        raise WireError(400, f"`input` is longer than {MAX_INPUT_CHARS} characters")
    fmt = data.get("response_format", "pcm")
    if fmt not in SPEECH_FORMATS:
        raise WireError(400, f"response_format {fmt!r} is not supported; this server streams "
                        "raw 16-bit mono pcm (`pcm`)")
    speed = data.get("speed", 1.0)
    if not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        raise WireError(400, "`speed` must be a number from 0.25 to 4.0")
    return SpeechRequest(text, str(data.get("voice") or "default"), float(speed))


def transcription_request(body: bytes, content_type: str) -> tuple[np.ndarray, str]:
    """The audio (16 kHz mono float32) and response_format of a transcription request."""
    fields = parse_multipart(body, content_type)
    if "file" not in fields:
        raise WireError(400, "missing the `file` field (the audio to transcribe)")
    fmt = fields.get("response_format", b"json").decode(errors="replace") or "json"
    if fmt not in ("json", "verbose_json", "text"):
        raise WireError(400, f"response_format {fmt!r} is not supported; "
                        "use json, verbose_json or text")
    return decode_audio(fields["file"]), fmt


def upload(body: bytes, content_type: str) -> bytes:
    """The `file` field of an emotion or vision request."""
    fields = parse_multipart(body, content_type)
    if "file" not in fields:
        raise WireError(400, "missing the `file` field")
    return fields["file"]
