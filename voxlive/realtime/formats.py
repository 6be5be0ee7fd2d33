"""The Realtime API's audio formats, to and from voxlive's internal audio.

`audio/pcm` is 16-bit little-endian mono at 24 kHz (the only rate the API allows);
`audio/pcmu` and `audio/pcma` are G.711 mu-law and A-law at 8 kHz, for telephony
bridges. G.711 is done in numpy (no audioop: it left the standard library in 3.13).
Input becomes 16 kHz mono float32 (what the VAD and STT take); output frames come
from AudioOutput as 48 kHz int16 and are resampled to the format's rate by av's
resampler (one per stream, so no clicks at frame edges).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np

from voxlive.audio.resample import CALL_RATE, MODEL_RATE, Resampler, to_int16

RATES = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}
FORMATS = tuple(RATES)


class AudioFormatError(ValueError):
    """Audio the client sent that cannot be decoded; the message says why."""


@dataclass(frozen=True)
class AudioFormat:
    type: str = "audio/pcm"

    @property
    def rate(self) -> int:
        return RATES[self.type]

    def seconds(self, size: int) -> float:
        """How long `size` bytes of this audio play (pcm16: two bytes a sample)."""
        return size / (self.rate * (2 if self.type == "audio/pcm" else 1))

    def as_json(self) -> dict[str, object]:
        return {"type": self.type, "rate": self.rate} if self.type == "audio/pcm" \
            else {"type": self.type}


def parse_format(value: object) -> AudioFormat:
    """A session's `audio.{input,output}.format` ({"type": ..., "rate": ...} or, in the
    beta dialect, a string such as "pcm16" / "g711_ulaw")."""
    beta = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
    if isinstance(value, str):
        kind, rate = beta.get(value, value), None
    elif isinstance(value, dict):
        kind, rate = value.get("type"), value.get("rate")
    else:
        raise AudioFormatError("an audio format is an object {\"type\": \"audio/pcm\", ...}")
    if kind not in RATES:
        raise AudioFormatError(f"unsupported audio format {kind!r}; use one of {list(FORMATS)}")
    if rate is not None and rate != RATES[kind]:
        raise AudioFormatError(f"{kind} is {RATES[kind]} Hz here, not {rate}")
    return AudioFormat(kind)


# --- G.711 (ITU-T), vectorised -----------------------------------------------------------

_BIAS = 0x84


def mulaw_encode(pcm: np.ndarray) -> bytes:
    x = pcm.astype(np.int32) >> 2  # 14-bit, as G.711 (and CPython's audioop) define it
    mask = np.where(x < 0, 0x7F, 0xFF)
    x = np.minimum(np.abs(x), 8159) + (_BIAS >> 2)
    segment = np.floor(np.log2(x)).astype(np.int32) - 5  # 0x3F -> 0, ..., 0x1FFF -> 7
    code = np.where(segment > 7, 0x7F, (segment << 4) | ((x >> (segment + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, np.uint8).astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + _BIAS) << exponent
    return np.where(u & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(np.int16)


def alaw_encode(pcm: np.ndarray) -> bytes:
    x = pcm.astype(np.int32) >> 3  # 13-bit
    sign = np.where(x >= 0, 0x80, 0)
    x = np.where(x < 0, -x - 1, x)
    x = np.minimum(x, 0x0FFF)
    exponent = np.where(x < 32, 0, np.floor(np.log2(np.maximum(x, 1))).astype(np.int32) - 4)
    mantissa = np.where(exponent == 0, x >> 1, x >> exponent) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    a = np.frombuffer(data, np.uint8).astype(np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8,
                         ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


# --- streams -------------------------------------------------------------------------------


def decode_base64(text: object) -> bytes:
    if not isinstance(text, str):
        raise AudioFormatError("'audio' must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioFormatError(f"'audio' is not valid base64 ({exc})") from None


class InputDecoder:
    """Client audio (base64 in the session's input format) -> 16 kHz mono float32."""

    def __init__(self, fmt: AudioFormat):
        self.format = fmt
        self._resampler = Resampler(MODEL_RATE)
        self._odd = b""  # half a pcm16 sample left over from the last chunk

    def decode(self, data: bytes) -> np.ndarray:
        if self.format.type == "audio/pcm":
            data, self._odd = self._odd + data, b""
            if len(data) % 2:
                data, self._odd = data[:-1], data[-1:]
            pcm = np.frombuffer(data, "<i2")
        elif self.format.type == "audio/pcmu":
            pcm = mulaw_decode(data)
        else:
            pcm = alaw_decode(data)
        if not len(pcm):
            return np.zeros(0, np.float32)
        return self._resampler.process(pcm.astype(np.float32) / 32768.0, self.format.rate)


class OutputEncoder:
    """AudioOutput's 48 kHz int16 frames -> bytes in the session's output format."""

    def __init__(self, fmt: AudioFormat):
        self.format = fmt
        self._resampler = Resampler(fmt.rate)

    def encode(self, frame: np.ndarray) -> bytes:
        pcm = to_int16(self._resampler.process(frame.astype(np.float32) / 32768.0, CALL_RATE))
        return self.encode_pcm(pcm)

    def encode_pcm(self, pcm: np.ndarray) -> bytes:
        if self.format.type == "audio/pcm":
            return pcm.astype("<i2").tobytes()
        if self.format.type == "audio/pcmu":
            return mulaw_encode(pcm)
        return alaw_encode(pcm)

    @property
    def bytes_per_second(self) -> int:
        return self.format.rate * (2 if self.format.type == "audio/pcm" else 1)
