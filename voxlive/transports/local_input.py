"""The microphone's queue: 16 kHz blocks from the input callback to `session.feed`.

The counterpart of the speaker's jitter queue (local_output), kept apart from LocalAudio,
which owns the streams and their threads. The input callback mixes each 20 ms block to
mono and resamples it to 16 kHz (`resample`); the block then crosses to the event loop
(`put`) into a bounded asyncio queue (2 s by default: more is dropped and counted, never
blocking PortAudio), and `pump` awaits `session.feed` one block at a time, like WebRTC
frames. Blocks are not merged when they pile up behind a busy loop: the echo guard
judges each feed by its last 200 ms, so one long chunk of echo ending in silence would
pass for the user's voice.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from voxlive.audio.resample import MODEL_RATE, Resampler
from voxlive.session import CallSession
from voxlive.transports.local_buffers import LocalAudioStats
from voxlive.transports.local_devices import SessionFailed

log = logging.getLogger(__name__)

MAX_INPUT_BLOCKS = 100
"""2 s of input may wait for the session; beyond that blocks are dropped (and counted)."""


class MicrophoneQueue:
    def __init__(self, stats: LocalAudioStats, max_blocks: int = MAX_INPUT_BLOCKS):
        self.stats = stats  # LocalAudio's
        self._max_blocks = max_blocks
        self.rate = 0
        self._resampler: Resampler | None = None
        self._queue: asyncio.Queue[np.ndarray] | None = None

    def start(self, rate: int) -> None:
        """The input stream's rate, once it is known; on the event loop, before the stream."""
        self.rate = rate
        self._queue = asyncio.Queue(self._max_blocks)
        self._resampler = Resampler(MODEL_RATE)

    # --- PortAudio's thread ---------------------------------------------------------------

    def resample(self, indata: np.ndarray) -> np.ndarray:
        """One callback's block (frames x channels) as 16 kHz mono float32."""
        block = indata[:, 0].copy() if indata.shape[1] == 1 else indata.mean(axis=1)
        assert self._resampler is not None
        return self._resampler.process(block, self.rate)

    # --- the event loop -------------------------------------------------------------------

    def put(self, block: np.ndarray) -> None:
        self.stats.input_blocks += 1
        assert self._queue is not None
        try:
            self._queue.put_nowait(block)
        except asyncio.QueueFull:
            self.stats.dropped_input += 1

    async def pump(self, session: CallSession) -> None:
        """Feed the session, block by block, until cancelled; SessionFailed if it raises."""
        assert self._queue is not None
        while True:
            samples = await self._queue.get()
            if not len(samples):
                continue  # the resampler or the canceller is still filling a frame
            try:
                await session.feed(samples)
            except Exception as exc:
                log.exception("the session failed on microphone input")
                raise SessionFailed(f"{type(exc).__name__}: {exc}") from exc
