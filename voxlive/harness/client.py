"""A WebRTC caller without a browser: speaks audio into a call, records what comes back.

It follows the same `/offer` contract as the web page, so the benchmarks and the
end-to-end tests exercise exactly what a browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from voxlive.audio.output import FRAME_SAMPLES
from voxlive.audio.resample import CALL_RATE, MODEL_RATE, Resampler, to_int16
from voxlive.latency import AUDIBLE_RMS
from voxlive.server.ice import apply_host_policy, rtc_configuration
from voxlive.transports.rtp_receive import pass_through_audio
from voxlive.transports.webrtc import FramePacer, audio_frame

RECEIVE_BUFFERS = ("pass-through", "aiortc")
LOUD_RMS = AUDIBLE_RMS
"""A received 20 ms frame louder than this carries the reply's voice (as the daemon counts
its audible frames)."""
ONSET_RMS = 0.001
"""The first sound of what the caller says: a 10 ms block above -60 dBFS (the VAD may
hear a soft onset, an /s/, well before the speech is loud)."""


def first_loud_sample(samples: np.ndarray, threshold: float = ONSET_RMS,
                      block: int = CALL_RATE // 100) -> int:
    """Where the first 10 ms block louder than `threshold` starts (0 if none is)."""
    count = len(samples) // block
    if count == 0:
        return 0
    rms = np.sqrt(np.mean(np.square(samples[: count * block].reshape(count, block)), axis=1))
    loud = np.nonzero(rms > threshold)[0]
    return int(loud[0]) * block if len(loud) else 0


class SpeakerTrack(MediaStreamTrack):
    """A microphone that says what it is given (48 kHz float32 mono), then silence.

    `echo_gain`/`echo_delay_s` make it also hear the call's reply, as a laptop mic
    hears its speakers: the tests and benchmarks of the echo guard use this.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.float32)
        self._echo = np.zeros(0, dtype=np.float32)
        self.echo_gain = 0.0
        self.echo_delay_s = 0.0
        self._pacer = FramePacer()
        self._sent = 0  # samples of said audio sent so far
        self._said = 0  # samples of said audio queued so far
        self._marks: list[int] = []
        self.said_at: list[float] = []  # when each say() began to go out
        self._sound_marks: list[int] = []
        # When the first loud frame of each say() went out, and its RTP time (pts).
        self.sound_at: list[float] = []
        self.sound_pts: list[int] = []

    def say(self, samples: np.ndarray) -> None:
        self._marks.append(self._said)
        self._sound_marks.append(self._said + first_loud_sample(samples))
        self._said += len(samples)
        self._pending = np.concatenate([self._pending, samples.astype(np.float32)])

    def hear_echo(self, samples: np.ndarray) -> None:
        """The reply as it came out of the speaker (48 kHz float32 mono)."""
        if self.echo_gain <= 0:
            return
        if len(self._echo) == 0:
            self._echo = np.zeros(int(self.echo_delay_s * CALL_RATE), dtype=np.float32)
        self._echo = np.concatenate([self._echo, self.echo_gain * samples])

    @property
    def speaking(self) -> bool:
        return len(self._pending) > 0

    async def recv(self) -> av.AudioFrame:
        pts = await self._pacer.next_pts()
        samples = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        chunk, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
        samples[: len(chunk)] = chunk
        while self._marks and self._marks[0] < self._sent + len(chunk):
            self._marks.pop(0)
            self.said_at.append(time.monotonic())
        while self._sound_marks and self._sound_marks[0] < self._sent + len(chunk):
            self._sound_marks.pop(0)
            self.sound_at.append(time.monotonic())
            self.sound_pts.append(pts)
        self._sent += len(chunk)
        echo, self._echo = self._echo[:FRAME_SAMPLES], self._echo[FRAME_SAMPLES:]
        samples[: len(echo)] += echo
        return audio_frame(to_int16(samples), pts)


class ImageTrack(VideoStreamTrack):
    """A camera that shows one picture (HxWx3 uint8 RGB), at VideoStreamTrack's pace."""

    def __init__(self, image: np.ndarray):
        super().__init__()
        self.image = image

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class CallClient:
    """`receive_buffer`: "pass-through" hears the reply as it arrives (as the daemon hears
    the caller, rtp_receive.py); "aiortc" keeps aiortc's own audio jitter buffer (80 ms).
    `headers` go with the offer (e.g. Authorization: Bearer KEY or a call token).
    `realtime`: call the OpenAI Realtime API's WebRTC endpoint (/v1/realtime/calls, events
    on `oai-events`) instead of voxlive's /offer."""

    def __init__(self, base_url: str, camera: np.ndarray | None = None,
                 receive_buffer: str = "pass-through",
                 headers: dict[str, str] | None = None, realtime: bool = False):
        if receive_buffer not in RECEIVE_BUFFERS:
            raise ValueError(f"receive_buffer must be one of {RECEIVE_BUFFERS}, "
                             f"not {receive_buffer!r}")
        self.receive_buffer = receive_buffer
        self.base_url = base_url.rstrip("/")
        self.headers = headers or {}  # e.g. Authorization: Bearer KEY or call token
        self.realtime = realtime
        self.location: str | None = None
        # A caller of a loopback daemon offers loopback candidates only, like the daemon.
        apply_host_policy(urlsplit(self.base_url).hostname or "127.0.0.1")
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.mic = SpeakerTrack()
        self.events: list[dict[str, Any]] = []
        self._received: list[np.ndarray] = []
        self._received_at: list[float] = []
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.channel = self.pc.createDataChannel("oai-events" if realtime else "events")
        self.channel.on("message", self._on_message)
        self.pc.addTrack(self.mic)
        if camera is not None:
            self.pc.addTrack(ImageTrack(camera))
        self.pc.on("track", self._on_track)

    async def connect(self, ssl: Any = True) -> None:
        """`ssl`: aiohttp's ssl argument (an SSLContext trusting a test certificate)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        if self.realtime:
            return await self._connect_realtime()
        offer = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        async with aiohttp.ClientSession() as http, http.post(
            f"{self.base_url}/offer", json=offer, headers=self.headers, ssl=ssl
        ) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"offer refused ({response.status}): {body.get('error')}")
        await self.pc.setRemoteDescription(RTCSessionDescription(**body))
        if self.receive_buffer == "pass-through":
            pass_through_audio(self.pc)
        await self.wait_for(lambda e: e["type"] == "ready", timeout=10)

    async def _connect_realtime(self) -> None:
        async with aiohttp.ClientSession() as http, http.post(
            f"{self.base_url}/v1/realtime/calls", data=self.pc.localDescription.sdp,
            headers={**self.headers, "Content-Type": "application/sdp"},
        ) as response:
            text = await response.text()
            if response.status != 201:
                raise RuntimeError(f"offer refused ({response.status}): {text}")
            self.location = response.headers.get("Location")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
        if self.receive_buffer == "pass-through":
            pass_through_audio(self.pc)
        await self.wait_for(lambda e: e["type"] == "session.created", timeout=10)

    def _on_message(self, message: str) -> None:
        self.events.append(json.loads(message))
        self._changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.ensure_future(self._record(track)))

    async def _record(self, track: MediaStreamTrack) -> None:
        resampler = Resampler(MODEL_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self._received.append(resampler.process_frame(frame))
            self._received_at.append(time.monotonic())
            if self.mic.echo_gain > 0:
                pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))
                self.mic.hear_echo(pcm.mean(axis=1).astype(np.float32) / 32768.0)

    def loud_frames_at(self, threshold: float = LOUD_RMS) -> list[float]:
        """Arrival times of the received frames that carry sound (RMS above `threshold`)."""
        return [t for c, t in zip(self._received, self._received_at, strict=True)
                if len(c) and float(np.sqrt(np.mean(c * c))) > threshold]

    def received_audio(self, since: float = 0.0) -> np.ndarray:
        """What the daemon sent (16 kHz mono), from arrival time `since` on."""
        chunks = [c for c, t in zip(self._received, self._received_at, strict=True) if t >= since]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                       timeout: float, start: int = 0) -> dict[str, Any]:
        """The first event from index `start` on that matches, waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[start:]:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [e["type"] for e in self.events[start:]]
                raise TimeoutError(f"no matching event within {timeout} s; got {kinds}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()
