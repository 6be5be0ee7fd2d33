"""The caller's audio reaches the VAD as it comes: no jitter wait, no queue per frame.

The track here is a double for the network (frames put in by the test, in bursts); the
pump, the inbox and the session's input side are the real ones.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from voxlive.transports.rtp_receive import FrameInbox, PassThroughAudioBuffer
from voxlive.transports.webrtc import FrameFeed, audio_frame, pump_input


def packet(seq: int) -> Any:
    return SimpleNamespace(sequence_number=seq, timestamp=seq * 960, _data=bytes([seq % 256]))


def test_each_in_order_packet_is_a_frame_at_once() -> None:
    buffer = PassThroughAudioBuffer()
    for seq in (65534, 65535, 0, 1):  # across the wrap of the 16-bit sequence number
        pli, frame = buffer.add(packet(seq))
        assert not pli and frame is not None
        assert frame.timestamp == seq * 960 and frame.data == bytes([seq % 256])


def test_late_and_duplicate_packets_are_dropped_not_waited_for() -> None:
    buffer = PassThroughAudioBuffer()
    assert buffer.add(packet(10))[1] is not None
    assert buffer.add(packet(12))[1] is not None  # 11 is missing: 12 goes on at once
    assert buffer.add(packet(11))[1] is None  # too late: 12 was already decoded
    assert buffer.add(packet(12))[1] is None  # a duplicate
    assert buffer.dropped == 2
    assert buffer.add(packet(13))[1] is not None


class BurstyTrack(MediaStreamTrack):
    """A double for the network: hands over whatever the test queued, then ends."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[av.AudioFrame | None] = asyncio.Queue()

    async def recv(self) -> av.AudioFrame:
        frame = await self.queue.get()
        if frame is None:
            raise MediaStreamError
        return frame


class SlowVadSession:
    """Records each batch the pump hands over; its first VAD run blocks (a busy CPU) until
    the test lets it go, so the frames that arrive meanwhile pile up."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.busy = threading.Event()
        self.release = threading.Event()

    async def feed(self, samples: np.ndarray, frames: list[tuple[int, int]]) -> None:
        self.batches.append([pts for pts, _count in frames])
        if len(self.batches) == 1:
            loop = asyncio.get_running_loop()
            self.busy.set()
            await loop.run_in_executor(None, self.release.wait, 10)


def frame(i: int) -> av.AudioFrame:
    return audio_frame(np.zeros(960, np.int16), i * 960)


async def test_frames_that_arrive_while_the_vad_is_busy_reach_it_in_its_next_run() -> None:
    track, session = BurstyTrack(), SlowVadSession()
    pump = asyncio.ensure_future(pump_input(track, session))  # type: ignore[arg-type]
    track.queue.put_nowait(frame(0))
    while not session.busy.is_set():
        await asyncio.sleep(0.001)
    for i in range(1, 11):  # a burst of ten frames while the VAD is busy
        track.queue.put_nowait(frame(i))
    while track.queue.qsize():
        await asyncio.sleep(0.001)
    session.release.set()
    track.queue.put_nowait(None)
    await asyncio.wait_for(pump, 10)
    # The burst went to the VAD in one run, right after the busy one: no frame waited
    # behind a VAD run of another frame of the burst.
    assert session.batches == [[0], [i * 960 for i in range(1, 11)]]


async def test_the_inbox_hands_over_everything_waiting_and_ends() -> None:
    inbox = FrameInbox()
    inbox.put(frame(0))
    inbox.put(frame(1))
    taken = await inbox.take()
    assert [f.pts for f, _ in taken] == [0, 960]
    assert taken[0][1] <= taken[1][1]  # stamped on arrival, in order
    waiter = asyncio.ensure_future(inbox.take())
    await asyncio.sleep(0)
    assert not waiter.done()
    inbox.put(frame(2))
    assert [f.pts for f, _ in await asyncio.wait_for(waiter, 5)] == [1920]
    inbox.end()
    assert await inbox.take() == []


@pytest.mark.parametrize("count", [1, 7])
async def test_the_session_analyses_a_batch_in_one_vad_run(count: int, config: Any,
                                                            embedded_models: Any) -> None:
    from voxlive.session import CallSession

    session = CallSession(embedded_models, config, 0.5, lambda e: None)
    runs: list[int] = []
    analyse = session.input._analyse

    def counting(samples: np.ndarray, *args: Any) -> Any:
        runs.append(len(samples))
        return analyse(samples, *args)

    session.input._analyse = counting  # type: ignore[method-assign]
    frames = [audio_frame((np.ones(960) * 3000).astype(np.int16), i * 960)
              for i in range(count)]
    await FrameFeed(session).frames(frames)  # the WebRTC transport resamples, then feeds
    # One run for the whole batch: 320 samples a frame at 16 kHz (less the resampler's
    # start-up delay, on the first frame of a call).
    assert len(runs) == 1 and count * 320 - 32 <= runs[0] <= count * 320
    stamps = session.input.reached_vad_since(0.0)
    assert [s[0] for s in stamps] == [f.pts for f in frames]
    assert all(s[2] > 0.05 for s in stamps)  # each frame's level is noted with its stamp
    await session.close()


def _receiver_with(track: Any) -> Any:
    """What DecodingAudioBuffer reads of aiortc's RTCRtpReceiver: its codecs by payload
    type, its timestamp mapper and its track (real aiortc objects, set by their names)."""
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from aiortc.rtcrtpreceiver import TimestampMapper

    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2,
                                 payloadType=111)
    return SimpleNamespace(track=track, **{"_RTCRtpReceiver__codecs": {111: opus},
                                           "_RTCRtpReceiver__timestamp_mapper": TimestampMapper()})


async def test_packets_are_decoded_on_the_loop_into_the_track() -> None:
    from aiortc.rtcrtpreceiver import RemoteStreamTrack

    from voxlive.transports.opus_out import OpusOut
    from voxlive.transports.rtp_receive import DecodingAudioBuffer

    track = RemoteStreamTrack(kind="audio")
    buffer = DecodingAudioBuffer(_receiver_with(track))
    opus = OpusOut()
    tone = (np.sin(np.arange(960) * 0.05) * 8000).astype(np.int16)
    origin = 123_456
    for seq in (7, 8, 10, 9):  # 9 comes after 10: dropped, not waited for
        data = bytes(opus.packet(tone, seq * 960))
        rtp = SimpleNamespace(sequence_number=seq, timestamp=origin + seq * 960,
                              payload_type=111, _data=data)
        assert buffer.add(rtp) == (False, None)  # nothing left for aiortc's thread
    frames = [await track.recv() for _ in range(3)]
    assert [f.samples for f in frames] == [960, 960, 960]
    assert [f.pts for f in frames] == [0, 960, 3 * 960]  # mapped from the first packet
    assert buffer.decoded == 3 and buffer.dropped == 1 and track._queue.empty()
    unknown = SimpleNamespace(sequence_number=11, timestamp=origin, payload_type=0,
                              _data=b"\x00")
    assert buffer.add(unknown)[1] is not None  # not ours to decode: aiortc's as before
