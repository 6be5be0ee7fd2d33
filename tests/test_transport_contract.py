"""The transport contract (voxlive/transports/contract.py), one side at a time: the WebRTC
input resamples its own frames before the session sees them, and a transport's own
playout buffer (the local sound card's jitter queue) empties when the reply pauses."""

from __future__ import annotations

from typing import Any

import numpy as np

from voxlive.audio.output import FRAME_SAMPLES, AudioOutput, Playback
from voxlive.audio.resample import CALL_RATE
from voxlive.transports.local_buffers import LocalAudioStats
from voxlive.transports.local_output import JitterQueue
from voxlive.transports.webrtc import FrameFeed, audio_frame


class RecordingCall:
    """Stands in for a CallSession's input side: records what the transport feeds."""

    def __init__(self) -> None:
        self.fed: list[tuple[np.ndarray, list[Any]]] = []

    async def feed(self, samples: np.ndarray, frames: Any = ()) -> None:
        self.fed.append((samples, list(frames)))


async def test_webrtc_frames_reach_the_call_as_16_khz_mono_with_their_rtp_times() -> None:
    call = RecordingCall()
    feed = FrameFeed(call)  # type: ignore[arg-type]
    tone = (np.sin(np.arange(960 * 5) * 2 * np.pi * 440 / 48_000) * 8000).astype(np.int16)
    frames = [audio_frame(tone[i * 960:(i + 1) * 960], i * 960) for i in range(5)]
    await feed.frames(frames[:2])
    await feed.frames(frames[2:])
    (first, stamps), (second, later) = call.fed
    assert first.dtype == np.float32 and first.ndim == 1
    assert [pts for pts, _ in stamps + later] == [0, 960, 1920, 2880, 3840]
    # 320 samples a frame at 16 kHz, less the resampler's start-up delay on the first
    assert 3 * 320 - 40 <= len(second) <= 3 * 320 and sum(n for _, n in later) == len(second)


def test_the_jitter_queue_empties_when_the_reply_pauses_and_fills_again_after() -> None:
    stats = LocalAudioStats()
    queue = JitterQueue(stats, jitter_frames=3)
    queue.start(CALL_RATE)
    output = AudioOutput()
    output.buffers.append(queue)
    reply = Playback(1)
    output.push(reply, np.full(FRAME_SAMPLES * 20, 900, np.int16), "a long sentence")
    output.open(reply)
    queue.fill(output)
    block = np.zeros(FRAME_SAMPLES, np.float32)
    assert queue.read_into(block) == FRAME_SAMPLES and block.any()  # queued reply audio
    output.pause(reply)
    assert stats.flushed_on_pause == 1
    assert queue.read_into(block) == 0  # nothing of the paused reply left to play
    queue.fill(output)  # topped up with silence while paused
    assert queue.read_into(block) == FRAME_SAMPLES and not block.any()
    output.resume(reply)
    queue.fill(output)
    while queue.read_into(block) and not block.any():
        pass
    assert block.any() and stats.flushed_on_pause == 1  # plays on; nothing flushed again
