"""The simulated callers of `voxlive bench capacity`: aiortc callers (bench/client.py) that
keep what a capacity figure needs and little else, so that the load side stays light.

- `listen_call`: the audio path alone. The caller sends quiet noise (the daemon's VAD
  runs on every window, no turn starts) and notes when each reply frame arrives. Its
  noise is one second of mono Opus encoded once and sent over and over (`LoopingMic`):
  aiortc encoding 16 callers' microphones, each frame through a thread pool in stereo,
  kept the callers' core as full as the daemon's (issue 18), and a saturated caller
  sends late.
- `talk_call`: a conversation. The caller asks questions with pauses between them,
  listens to each reply, and now and then talks over one (a barge-in); the daemon's own
  `turn_latency` events give voice-to-voice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack

from voxlive.audio.output import FRAME_SAMPLES
from voxlive.audio.resample import CALL_RATE, to_int16
from voxlive.harness.client import CallClient
from voxlive.transports.opus_out import TIME_BASE, OpusOut
from voxlive.transports.webrtc import FramePacer

NOISE_RMS = 0.003
"""Quiet room noise (-50 dBFS): Silero hears no speech in it."""
GAP_S = 0.06


class LeanCallClient(CallClient):
    """A CallClient that only stamps when each reply frame arrives (no resampling, no
    audio kept): its load is the transport's, not the recorder's."""

    async def _record(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            self._received_at.append(time.monotonic())


class LoopingMic(MediaStreamTrack):
    """`samples` (48 kHz float32 mono) as ready-made Opus packets, encoded once and sent
    in a loop at the pace of a microphone; aiortc only packs them."""

    kind = "audio"

    def __init__(self, samples: np.ndarray):
        super().__init__()
        encoder = OpusOut()
        samples = to_int16(samples)
        self._payloads = [bytes(encoder.packet(samples[i:i + FRAME_SAMPLES], i))
                          for i in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
        self._pacer = FramePacer()
        self.sent = 0

    async def recv(self) -> av.Packet:
        pts = await self._pacer.next_pts()
        packet = av.Packet(self._payloads[self.sent % len(self._payloads)])
        packet.pts, packet.time_base = pts, TIME_BASE
        self.sent += 1
        return packet


@dataclass
class CallResult:
    connected: bool = False
    error: str = ""
    frames: int = 0
    seconds: float = 0.0
    gaps_over_60ms: int = 0
    max_gap_ms: float = 0.0
    turns: list[dict[str, Any]] = field(default_factory=list)
    barge_ins: int = 0
    errors: int = 0

    @property
    def realtime(self) -> float:
        """Reply frames received per 20 ms of wall time (1.0: real time)."""
        return self.frames * 0.02 / self.seconds if self.seconds else float("nan")


def noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * CALL_RATE)) * NOISE_RMS).astype(np.float32)


def _gaps(client: CallClient, since: float, result: CallResult) -> None:
    """Frame timing measured from `since` (past the call's start-up) to now."""
    times = np.array([t for t in client._received_at if t >= since])
    result.frames = int(times.size)
    result.seconds = time.monotonic() - since
    if times.size > 1:
        intervals = np.diff(times)
        result.gaps_over_60ms = int(np.sum(intervals > GAP_S))
        result.max_gap_ms = round(float(intervals.max()) * 1000, 1)


async def listen_call(url: str, hold_s: float, warm_s: float, seed: int,
                      ready: asyncio.Barrier | None = None) -> CallResult:
    """One listening call: noise in for warm_s + hold_s, reply frames timed over hold_s."""
    result = CallResult()
    client = LeanCallClient(url)
    client.pc.getTransceivers()[0].sender.replaceTrack(LoopingMic(noise(1.0, seed)))
    try:
        try:
            await client.connect()
            result.connected = True
        finally:
            if ready is not None:  # every caller arrives, connected or not
                await ready.wait()
        await asyncio.sleep(warm_s)
        since = time.monotonic()
        await asyncio.sleep(hold_s)
        _gaps(client, since, result)
    except Exception as exc:  # a refused or failed call is a figure, not a crash
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    return result


async def talk_call(url: str, questions: list[np.ndarray], hold_s: float, seed: int,
                    barge_in_share: float = 0.2, start_delay_s: float = 0.0) -> CallResult:
    """One conversation for about hold_s: question, reply (or a barge-in), pause."""
    rng = random.Random(seed)
    result = CallResult()
    client = LeanCallClient(url)
    try:
        await client.connect()
        result.connected = True
        await asyncio.sleep(start_delay_s)
        since = time.monotonic()
        end = since + hold_s
        i = seed
        while time.monotonic() < end:
            audio = questions[i % len(questions)]
            i += 1
            start = len(client.events)
            client.mic.say(audio)
            barge = rng.random() < barge_in_share
            await _await_reply(client, start, barge, result)
            if barge:
                result.barge_ins += 1
                client.mic.say(questions[i % len(questions)])  # over the reply
                i += 1
                await _await_reply(client, len(client.events), False, result)
            await asyncio.sleep(rng.uniform(1.0, 3.0))
        _gaps(client, since, result)
        result.turns = [e for e in client.events if e["type"] == "turn_latency"]
        result.errors = sum(e["type"] == "error" for e in client.events)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    return result


async def _await_reply(client: CallClient, start: int, barge: bool,
                       result: CallResult) -> None:
    """Until the reply has played (back to listening), or, for a barge-in, until it has
    started to play and a second of it was heard."""
    def started(e: dict[str, Any]) -> bool:
        return e["type"] in ("turn_latency", "error")

    def ended(e: dict[str, Any]) -> bool:
        return e["type"] in ("reply_played", "reply_cancelled", "error")

    try:
        if barge:
            await client.wait_for(started, timeout=60, start=start)
            await asyncio.sleep(1.0)
            return
        await client.wait_for(ended, timeout=60, start=start)
    except TimeoutError:
        result.errors += 1
