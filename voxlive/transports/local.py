"""The machine's own microphone and speaker (PortAudio through sounddevice) as a call's audio.

The session sees the same thing as on a WebRTC call: 16 kHz mono input fed in stream
order, and one 20 ms output frame pulled per 20 ms. Only the clock differs: here the
sound card's callbacks set the pace, not a timer.

Threads: PortAudio calls the stream callbacks from its own threads. They never touch
asyncio objects or the session: the input callback resamples its block to 16 kHz and
hands it to the event loop with `loop.call_soon_threadsafe`, and the output callback
only pops samples from a lock-protected FIFO (and wakes the loop the same way).
Everything that calls into the session runs on the event loop.

Echo cancellation (voxlive.audio.aec, with `echo_cancellation=True`) runs in those
callbacks too: the output callback gives the canceller each block at the moment it
hands it to PortAudio (the reverse stream), and the input callback passes each
microphone block through it before the loop sees it, so the VAD, the echo guard and
STT all get the cancelled signal. Why there and not on the loop or a worker: it costs
tens of microseconds per 10 ms frame, the callbacks know best when a block is played
and heard, and a worker would add a queue and a thread hop to both paths for nothing.

Device discovery lives in local_devices, the FIFO and counters in local_buffers, the
microphone's queue in local_input, the speaker's jitter queue in local_output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voxlive.audio.aec import AecUnavailable, EchoCanceller
from voxlive.audio.resample import CALL_RATE, MODEL_RATE, Resampler
from voxlive.session import CallSession
from voxlive.transports.local_buffers import (
    BLOCK_S,
    LocalAudioStats,
    SampleFifo,
    prioritise_this_thread,
)
from voxlive.transports.local_devices import (
    AudioUnavailable,
    DeviceLost,
    SessionFailed,
    find_device,
    list_devices,
    reinitialize_portaudio,
    sounddevice,
    stream_format,
)
from voxlive.transports.local_input import MAX_INPUT_BLOCKS, MicrophoneQueue
from voxlive.transports.local_output import JITTER_FRAMES, MAX_JITTER_FRAMES, JitterQueue

__all__ = ["AudioUnavailable", "DeviceLost", "LocalAudio", "LocalAudioStats", "SampleFifo",
           "SessionFailed", "find_device", "list_devices", "reinitialize_portaudio",
           "sounddevice"]

log = logging.getLogger(__name__)

PREFERRED_RATE = CALL_RATE
"""Tried first: no resampling on the way out. Otherwise the device's default rate."""
SETTLE_BLOCKS = 10
"""Output blocks while a stream starts (PortAudio primes its buffer in a burst): their
underruns are silence before anything plays, and are not counted."""
STALL_S = 2.0
"""A stream whose callback has not run for this long is treated as lost."""
STARTUP_S = 3.0
"""Time a stream may take for its first callback, on top of `stall_s`."""
CLOSE_TIMEOUT_S = 3.0


class LocalAudio:
    """Connects one CallSession to a microphone and a speaker.

    Input: 20 ms blocks at the device's rate, mixed to mono, resampled to 16 kHz (and
    echo-cancelled) in the callback, go through a bounded queue (MicrophoneQueue) to a
    task that awaits `session.feed`, one block at a time, like WebRTC frames.

    Output: a small jitter queue between the session and the sound card (JitterQueue,
    which says how it grows and shrinks). The output callback takes 20 ms from it and
    wakes a task on the loop, which tops it up from `session.output.next_frame()`. When
    a barge-in pauses the reply the queue is emptied at once, leaving only PortAudio's
    own buffer (`latency="low"`: 10-40 ms with ALSA) to play out.

    A stream that stops by itself (PortAudio error, device unplugged, sound server
    gone) or whose callback stalls for `stall_s` makes `wait_failed()` raise
    DeviceLost; the caller stops this object and may build a new one (reopen).
    """

    def __init__(self, session: CallSession, input_device: str | int | None = None,
                 output_device: str | int | None = None, *, jitter_frames: int = JITTER_FRAMES,
                 max_jitter_frames: int = MAX_JITTER_FRAMES, latency: str | float = "low",
                 preferred_rate: int = PREFERRED_RATE, max_input_blocks: int = MAX_INPUT_BLOCKS,
                 stall_s: float = STALL_S, echo_cancellation: bool = False):
        self.session = session
        self.echo_cancellation = echo_cancellation
        self.echo_canceller: EchoCanceller | None = None  # made in start(), per stream pair
        self._reverse_resampler: Resampler | None = None
        self.input_spec = input_device
        self.output_spec = output_device
        self.stats = LocalAudioStats()
        self.microphone = MicrophoneQueue(self.stats, max_input_blocks)
        self.jitter_queue = JitterQueue(self.stats, jitter_frames, max_jitter_frames)
        self.latency = latency
        self.preferred_rate = preferred_rate
        self.stall_s = stall_s
        self.input_rate = 0
        self.output_rate = 0
        self.input_name = ""
        self.output_name = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._streams: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: asyncio.Future[None] | None = None
        self._stopping = False
        self._last_callback: dict[str, float] = {}
        self._output_channels = 1
        self._input_channels = 1
        self._prioritised: set[str] = set()  # streams whose PortAudio thread was raised

    # --- opening ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open and start both streams. AudioUnavailable: no such device or no PortAudio;
        DeviceLost: the device refused to open (busy, gone)."""
        sd = sounddevice()
        self._loop = asyncio.get_running_loop()
        self._failure = self._loop.create_future()
        input_index = find_device(self.input_spec, "input")
        output_index = find_device(self.output_spec, "output")
        self.input_rate, self._input_channels = stream_format(
            sd, input_index, "input", self.preferred_rate)
        self.output_rate, self._output_channels = stream_format(
            sd, output_index, "output", self.preferred_rate)
        self.input_name = sd.query_devices(input_index)["name"]
        self.output_name = sd.query_devices(output_index)["name"]
        self.microphone.start(self.input_rate)
        self.jitter_queue.start(self.output_rate)
        if self.echo_cancellation:
            try:
                self.echo_canceller = EchoCanceller(MODEL_RATE)
            except AecUnavailable as exc:
                raise AudioUnavailable(str(exc)) from None
            self._reverse_resampler = Resampler(MODEL_RATE)
        try:
            self._streams["input"] = sd.InputStream(
                device=input_index, samplerate=self.input_rate,
                channels=self._input_channels, dtype="float32",
                blocksize=round(self.input_rate * BLOCK_S), latency=self.latency,
                callback=self._input_callback,
                finished_callback=lambda: self._from_portaudio(self._finished, "input"),
            )
            self._streams["output"] = sd.OutputStream(
                device=output_index, samplerate=self.output_rate,
                channels=self._output_channels, dtype="float32",
                blocksize=round(self.output_rate * BLOCK_S), latency=self.latency,
                callback=self._output_callback,
                finished_callback=lambda: self._from_portaudio(self._finished, "output"),
            )
        except Exception as exc:
            await self._close_streams()
            raise DeviceLost(f"could not open the audio device: {exc}") from exc
        self.jitter_queue.fill(self.session.output)  # the first callback finds the queue full
        if self.echo_canceller is not None:
            # From handing a block to PortAudio until its echo comes back from the input
            # callback: both streams' buffers (the jitter queue is before the hand-over).
            self.echo_canceller.set_delay_ms(
                (self._streams["input"].latency + self._streams["output"].latency) * 1000)
        # PulseAudio can take a second or two to start a stream: the watchdog waits.
        later = time.monotonic() + STARTUP_S
        self._last_callback = {"input": later, "output": later}
        try:
            for stream in self._streams.values():
                stream.start()
        except Exception as exc:
            await self._close_streams()
            raise DeviceLost(f"could not start the audio device: {exc}") from exc
        if self.jitter_queue not in self.session.output.buffers:  # emptied on a pause
            self.session.output.buffers.append(self.jitter_queue)
        self._tasks = [self._loop.create_task(self._guarded(work)) for work in (
            self.microphone.pump(self.session), self.jitter_queue.keep_filled(self.session.output),
            self._watch())]
        log.debug("local audio: in %s (%d Hz), out %s (%d Hz), latency %.0f/%.0f ms",
                 self.input_name, self.input_rate, self.output_name, self.output_rate,
                 self.input_latency * 1000, self.output_latency * 1000)

    @property
    def input_latency(self) -> float:
        stream = self._streams.get("input")
        return float(stream.latency) if stream is not None else 0.0

    @property
    def output_latency(self) -> float:
        """PortAudio's output buffer plus the jitter queue, in seconds."""
        stream = self._streams.get("output")
        device = float(stream.latency) if stream is not None else 0.0
        return device + self.jitter_queue.latency_s

    # --- PortAudio's thread -------------------------------------------------------------

    def _from_portaudio(self, function: Callable[..., None], *args: Any) -> None:
        """Run `function` on the event loop (from PortAudio's thread)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            loop.call_soon_threadsafe(function, *args)

    def _input_callback(self, indata: np.ndarray, frames: int, time_info: Any,
                        status: Any) -> None:
        if "input" not in self._prioritised:
            self._prioritised.add("input")
            self.stats.realtime_input = prioritise_this_thread()
        self._last_callback["input"] = time.monotonic()
        if status.input_overflow:
            self.stats.input_overflows += 1
        samples = self.microphone.resample(indata)
        canceller = self.echo_canceller
        if canceller is not None:
            try:
                samples = canceller.captured(samples)
            except Exception as exc:  # reported and reopened, never a silent hang
                self._from_portaudio(self._fail, DeviceLost(f"echo cancellation failed: {exc}"))
                return
        self._from_portaudio(self.microphone.put, samples)

    def _output_callback(self, outdata: np.ndarray, frames: int, time_info: Any,
                         status: Any) -> None:
        now = time.monotonic()
        if "output" not in self._prioritised:
            self._prioritised.add("output")
            self.stats.realtime_output = prioritise_this_thread()
        if self.stats.output_blocks > 10:  # not the bursts while the stream starts
            gap = (now - self._last_callback["output"]) * 1000
            self.stats.max_callback_gap_ms = max(self.stats.max_callback_gap_ms, gap)
        self._last_callback["output"] = now
        self.stats.output_blocks += 1
        if status.output_underflow:
            self.stats.output_underflows += 1
        mono = outdata[:, 0]
        if self.jitter_queue.read_into(mono) < frames and self.stats.output_blocks > SETTLE_BLOCKS:
            self.stats.underruns += 1
        if outdata.shape[1] > 1:
            outdata[:, 1:] = mono[:, None]
        if self.echo_canceller is not None:
            self._played(mono)
        self._from_portaudio(self.jitter_queue.woken, now)

    def _played(self, block: np.ndarray) -> None:
        """The block just handed to PortAudio, as the echo canceller's reverse stream."""
        assert self.echo_canceller is not None and self._reverse_resampler is not None
        try:
            far = (block.copy() if self.output_rate == MODEL_RATE
                   else self._reverse_resampler.process(block, self.output_rate))
            self.echo_canceller.played(far)
        except Exception as exc:
            self._from_portaudio(self._fail, DeviceLost(f"echo cancellation failed: {exc}"))

    # --- the event loop -----------------------------------------------------------------

    def _finished(self, name: str) -> None:
        if not self._stopping:
            self._fail(DeviceLost(f"the {name} stream stopped"))

    def _fail(self, exc: BaseException) -> None:
        if self._failure is not None and not self._failure.done():
            self._failure.set_exception(exc)

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except (DeviceLost, SessionFailed) as exc:
            self._fail(exc)
        except Exception as exc:
            log.exception("local audio task failed")
            self._fail(DeviceLost(f"{type(exc).__name__}: {exc}"))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for name, stream in self._streams.items():
                if not stream.active:
                    raise DeviceLost(f"the {name} stream stopped")
                if now - self._last_callback[name] > self.stall_s:
                    raise DeviceLost(f"the {name} device gave no audio for {self.stall_s:g} s")

    async def wait_failed(self) -> None:
        """Wait until the audio fails: raises DeviceLost or SessionFailed."""
        assert self._failure is not None, "start() first"
        await asyncio.shield(self._failure)

    # --- closing ------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop and close the streams and cancel the tasks; the session stays open."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._close_streams()
        self.jitter_queue.clear()
        if self._failure is not None and not self._failure.done():
            self._failure.cancel()
        elif self._failure is not None and not self._failure.cancelled():
            self._failure.exception()  # retrieved: no "never retrieved" warning

    async def close(self) -> None:
        """Hang up: stop the audio, then close the session."""
        await self.stop()
        await self.session.close()

    async def _close_streams(self) -> None:
        streams, self._streams = list(self._streams.values()), {}
        if not streams:
            return

        def close_all() -> None:
            for stream in streams:
                with contextlib.suppress(Exception):
                    stream.abort()
                with contextlib.suppress(Exception):
                    stream.close()

        # A dead device can make PortAudio block in close: a daemon thread, waited for a
        # while, never holds up the exit.
        done = asyncio.get_running_loop().create_future()

        def run() -> None:
            close_all()
            self._from_portaudio(lambda: done.done() or done.set_result(None))

        threading.Thread(target=run, name="voxlive-audio-close", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(done), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("the audio device did not close within %.0f s", CLOSE_TIMEOUT_S)
