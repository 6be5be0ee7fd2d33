"""Acoustic echo cancellation for open speakers: WebRTC's AEC3, through livekit's Python SDK.

On a call the browser cancels the echo of its own speakers; `voxlive local` plays the
reply through this machine's speakers, and its microphone hears it back. Without an
echo canceller the assistant would interrupt itself (or would have to stop listening
while it talks: half duplex). This module subtracts the echo of what was played from
what the microphone hears, so the user can still talk over the reply.

Why livekit (`livekit.rtc.AudioProcessingModule`): of the Python packages of the WebRTC
audio processing module or speexdsp found in the package lists, it is the maintained
one: released by LiveKit with their realtime SDK (Apache-2.0, binary wheels for Linux,
macOS and Windows, among the 2,500 most downloaded PyPI packages), wrapping the same
AEC3 Chrome runs. Measured here on espeak-ng speech with a room response, 80 ms delay,
-8 dB: 28 dB of echo reduction after convergence, for about 2 % of one core.
pywebrtc-audio 0.2.0 cancels about as well (27 dB) but is a young one-maintainer
binding; aec-audio-processing and speexaec ship only sources to compile (speexaec needs
libspeexdsp headers), and webrtc-apm is not installable here. Speex's echo canceller is
also the weaker algorithm (no delay estimator, no residual suppressor).

The reverse stream (far end) is the signal as played: the transport feeds it at the
moment it hands a block to the sound card, and tells the canceller its audio latencies
(`set_delay_ms`); AEC3's own delay estimator corrects what that figure misses.

Threads: `played` and `captured` are called from PortAudio's output and input callback
threads (one each); a lock serialises them around the processing module, which is not
meant to be driven from two threads at once. Each 10 ms frame costs tens of
microseconds, so the callbacks stay far within their 20 ms, and nothing of it runs on
the event loop.

livekit is imported on first use: voxlive runs without it (the `local` extra), and
`voxlive local` then falls back to half duplex, saying so.
"""

from __future__ import annotations

import logging
import math
import threading
from importlib import metadata
from typing import Any

import numpy as np

from voxlive.audio.resample import MODEL_RATE, FrameSplitter, to_int16

log = logging.getLogger(__name__)

FRAME_S = 0.01
"""The processing module takes exactly 10 ms frames."""


class AecUnavailable(RuntimeError):
    """No echo canceller here (livekit is not installed or does not load)."""


def _livekit_rtc() -> Any:
    try:
        from livekit import rtc
    except ImportError as exc:  # ModuleNotFoundError, or its native library failed to load
        raise AecUnavailable(
            f"acoustic echo cancellation needs the livekit package ({exc}): "
            "pip install 'voxlive[local]'"
        ) from None
    except OSError as exc:
        raise AecUnavailable(f"livekit's native library does not load: {exc}") from None
    return rtc


def aec_description() -> str:
    """What cancels the echo, for `voxlive doctor` and the start-up line (loads livekit)."""
    _livekit_rtc()
    try:
        version = metadata.version("livekit")
    except metadata.PackageNotFoundError:
        version = "?"
    return f"WebRTC AEC3 (livekit {version})"


def _to_int16_bytes(samples: np.ndarray) -> bytearray:
    return bytearray(to_int16(samples).tobytes())


class EchoCanceller:
    """Cancels the echo of the played signal from microphone audio.

    `played(samples)` gives the far end (what the speaker plays), `captured(samples)`
    the near end (what the microphone hears) and returns it with the echo removed. Both
    are float32 mono at `rate` (any rate the module takes: 8, 16, 32, 44.1 or 48 kHz;
    the local transport uses 16 kHz, the rate the VAD and STT need), in pieces of any
    length: they are cut into 10 ms frames here, so `captured` returns up to 10 ms less
    or more than it was given (what completes a frame), never loses or repeats any.
    """

    def __init__(self, rate: int = MODEL_RATE, delay_ms: float = 0.0):
        rtc = _livekit_rtc()
        self._rtc = rtc
        self.rate = rate
        self.frame = round(rate * FRAME_S)
        # The high-pass filter removes DC and rumble the microphone adds, which AEC3's
        # linear filter would otherwise spend itself on.
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._lock = threading.Lock()
        self._render = FrameSplitter(self.frame)
        self._capture = FrameSplitter(self.frame)
        self.delay_ms = max(0, round(delay_ms))
        self.frames_played = 0
        self.frames_captured = 0

    def set_delay_ms(self, delay_ms: float) -> None:
        """The audio path's delay: from handing a block to the sound card until the
        microphone's block with its echo reaches `captured` (the output and input
        latencies). AEC3 searches around it, so an estimate is enough."""
        self.delay_ms = max(0, round(delay_ms))

    def played(self, samples: np.ndarray) -> None:
        """Far end: the samples just handed to the speaker (silence included: the
        canceller needs the reverse stream without gaps to keep its timing)."""
        for frame in self._render.push(samples):
            data = _to_int16_bytes(frame)
            audio = self._rtc.AudioFrame(data, self.rate, 1, self.frame)
            with self._lock:
                self._apm.process_reverse_stream(audio)
            self.frames_played += 1

    def captured(self, samples: np.ndarray) -> np.ndarray:
        """Near end: microphone samples; returns them with the echo cancelled."""
        frames = self._capture.push(samples)
        if not frames:
            return np.zeros(0, np.float32)
        out = []
        for frame in frames:
            data = _to_int16_bytes(frame)
            audio = self._rtc.AudioFrame(data, self.rate, 1, self.frame)
            with self._lock:
                self._apm.set_stream_delay_ms(self.delay_ms)  # before every frame
                self._apm.process_stream(audio)
            out.append(np.frombuffer(audio.data, np.int16))
            self.frames_captured += 1
        return (np.concatenate(out).astype(np.float32) / 32768.0)


def echo_canceller(rate: int = MODEL_RATE) -> tuple[EchoCanceller | None, str]:
    """A canceller and its description, or (None, why not) where livekit is missing."""
    try:
        canceller = EchoCanceller(rate)
        return canceller, aec_description()
    except AecUnavailable as exc:
        log.warning("no acoustic echo cancellation: %s", exc)
        return None, str(exc)


def erle_db(mic: np.ndarray, cancelled: np.ndarray) -> float:
    """Echo return loss enhancement: how much weaker (dB) the cancelled signal is than
    the microphone's, on echo alone (no near-end speech in either)."""
    n = min(len(mic), len(cancelled))
    before = float(np.sum(np.asarray(mic[:n], np.float64) ** 2))
    after = float(np.sum(np.asarray(cancelled[:n], np.float64) ** 2))
    return 10.0 * math.log10(max(before, 1e-12) / max(after, 1e-12))
