"""The audio path's fixes for many calls (issue 18): one analysis thread for every call,
and the reply encoded by its own track with free silence."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from voxlive.audio.analysis_worker import AnalysisWorker
from voxlive.transports.opus_out import SETTLE_FRAMES, OpusOut


async def test_analysis_results_and_errors_come_back_to_each_caller() -> None:
    worker = AnalysisWorker("test-analysis")
    assert await worker.run(lambda: 6 * 7) == 42

    def broken() -> None:
        raise ValueError("bad window")

    with pytest.raises(ValueError, match="bad window"):
        await worker.run(broken)


async def test_work_that_waits_together_runs_in_one_round() -> None:
    worker = AnalysisWorker("test-analysis")
    gate = threading.Event()
    first = worker.run(lambda: gate.wait(5))  # holds the thread while the others queue
    while worker.waiting:  # until the thread has taken it
        await asyncio.sleep(0.001)
    others = [worker.run(lambda i=i: i) for i in range(5)]
    gate.set()
    assert await first is True
    assert await asyncio.gather(*others) == [0, 1, 2, 3, 4]
    assert worker.jobs == 6 and worker.rounds == 2


async def test_a_cancelled_caller_does_not_break_the_others() -> None:
    worker = AnalysisWorker("test-analysis")
    gate = threading.Event()
    held = worker.run(lambda: gate.wait(5))
    gone = worker.run(lambda: "never read")
    kept = worker.run(lambda: "read")
    gone.cancel()
    gate.set()
    assert await held is True and await kept == "read"


def _decoded(packet_data: bytes, pts: int, decoder: OpusDecoder) -> np.ndarray:
    frames = decoder.decode(JitterFrame(packet_data, pts))
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


def test_silence_after_sound_goes_out_as_one_byte_packets_that_decode_to_silence() -> None:
    opus, decoder = OpusOut(), OpusDecoder()
    tone = (np.sin(np.arange(960) * 0.05) * 8000).astype(np.int16)
    silence = np.zeros(960, np.int16)
    sizes, levels = [], []
    script = [tone] * 5 + [silence] * (SETTLE_FRAMES + 10) + [tone] * 5
    for i, samples in enumerate(script):
        packet = opus.packet(samples, i * 960)
        assert packet.pts == i * 960
        data = bytes(packet)
        sizes.append(len(data))
        levels.append(int(np.abs(_decoded(data, i * 960, decoder)).max()))
    silent = sizes[5 + SETTLE_FRAMES + 1 : 5 + SETTLE_FRAMES + 10]
    assert set(silent) == {1}  # the TOC alone
    assert all(level < 50 for level in levels[5 + SETTLE_FRAMES + 1 : -5])
    assert min(sizes[-5:]) > 10 and max(levels[-3:]) > 3000  # the sound is back
    assert opus.skipped == 9 + 1
