"""The machine's own microphone and speaker (PortAudio through sounddevice) as a call's audio.

The session sees the same thing as on a WebRTC call: 16 kHz mono input fed in stream
order, and one 20 ms output frame pulled per 20 ms. Only the clock differs: here the
sound card's callbacks set the pace, not a timer.

Threads: PortAudio calls the stream callbacks from its own thread. They never touch
asyncio objects or the session: the input callback hands a copy of its block to the
event loop with `loop.call_soon_threadsafe`, and the output callback only pops samples
from a lock-protected FIFO (and wakes the loop the same way). Everything that calls
into the session runs on the event loop.

sounddevice is imported on first use, so that voxlive runs without it (the `local`
extra) and without PortAudio (the libportaudio2 Debian package).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxlive.audio.resample import CALL_RATE, MODEL_RATE, Resampler
from voxlive.session import CallSession

log = logging.getLogger(__name__)

BLOCK_S = 0.02
"""PortAudio block: 20 ms, the same as a WebRTC frame and AudioOutput's frame."""
PREFERRED_RATE = CALL_RATE
"""Tried first: no resampling on the way out. Otherwise the device's default rate."""
JITTER_FRAMES = 3
MAX_JITTER_FRAMES = 6
JITTER_RELAX_S = 20.0
"""The jitter queue shrinks by a frame after this long without an underrun."""
SETTLE_BLOCKS = 10
"""Output blocks while a stream starts (PortAudio primes its buffer in a burst): their
underruns are silence before anything plays, and are not counted."""
MAX_INPUT_BLOCKS = 100
"""2 s of input may wait for the session; beyond that blocks are dropped (and counted)."""
STALL_S = 2.0
"""A stream whose callback has not run for this long is treated as lost."""
STARTUP_S = 3.0
"""Time a stream may take for its first callback, on top of `stall_s`."""
CLOSE_TIMEOUT_S = 3.0


class AudioUnavailable(RuntimeError):
    """Local audio cannot work here as configured: no sounddevice or PortAudio, no such
    device. The message says what to do; retrying does not help."""


class DeviceLost(RuntimeError):
    """A stream could not be opened, or stopped or stalled while running: worth reopening."""


class SessionFailed(RuntimeError):
    """Feeding the microphone into the session raised; the session is in doubt."""


def sounddevice() -> Any:
    """The sounddevice module, or AudioUnavailable saying what to install."""
    try:
        import sounddevice as sd
    except ModuleNotFoundError:
        raise AudioUnavailable(
            "the local mode needs the sounddevice package: pip install 'voxlive[local]'"
        ) from None
    except OSError as exc:  # sounddevice loads libportaudio when imported
        raise AudioUnavailable(
            f"PortAudio is missing ({exc}): install the libportaudio2 package "
            "(scripts/install-audio-deps.sh does)"
        ) from None
    return sd


def reinitialize_portaudio() -> None:
    """Let PortAudio enumerate the devices afresh (a replugged USB headset gets a new
    index). Only call it while no stream is open."""
    sd = sounddevice()
    with contextlib.suppress(Exception):
        sd._terminate()
    sd._initialize()


def list_devices() -> str:
    """The audio devices PortAudio sees, marked `>` default input, `<` default output."""
    sd = sounddevice()
    devices = sd.query_devices()
    if not len(devices):
        return ("no audio devices: PortAudio found no sound card (is PulseAudio/PipeWire "
                "running for this user, or are you in a container without /dev/snd?)")
    default_in, default_out = _default_devices(sd)
    apis = sd.query_hostapis()
    lines = ["audio devices (pick one with --input-device/--output-device INDEX or NAME):"]
    for index, device in enumerate(devices):
        mark = (">" if index == default_in else " ") + ("<" if index == default_out else " ")
        api = apis[device["hostapi"]]["name"]
        lines.append(
            f"{mark}{index:3d} {device['name']} ({api}; {device['max_input_channels']} in, "
            f"{device['max_output_channels']} out; {device['default_samplerate']:.0f} Hz)"
        )
    lines.append("> default input, < default output")
    return "\n".join(lines)


def _default_devices(sd: Any) -> tuple[int, int]:
    default_in, default_out = sd.default.device
    return int(default_in), int(default_out)


def find_device(spec: str | int | None, kind: str) -> int:
    """A device index for `kind` ("input" or "output"): the default for None, else an
    index or a case-insensitive name substring (an exact name wins over substrings)."""
    sd = sounddevice()
    devices = sd.query_devices()
    channels = f"max_{kind}_channels"
    if spec is None or spec == "":
        default = _default_devices(sd)[0 if kind == "input" else 1]
        if default < 0 or default >= len(devices):
            raise AudioUnavailable(f"there is no default {kind} device; "
                                   f"`voxlive local --list-devices` shows the devices")
        return default
    if isinstance(spec, int) or str(spec).strip().isdigit():
        index = int(spec)
        if not 0 <= index < len(devices):
            raise AudioUnavailable(f"no audio device #{index} (there are {len(devices)}); "
                                   "`voxlive local --list-devices` shows them")
        if devices[index][channels] < 1:
            raise AudioUnavailable(f"device #{index} ({devices[index]['name']}) has no {kind}")
        return index
    wanted = str(spec).lower()
    usable = [(i, d["name"]) for i, d in enumerate(devices) if d[channels] > 0]
    exact = [i for i, name in usable if name.lower() == wanted]
    if exact:
        return exact[0]
    matches = [(i, name) for i, name in usable if wanted in name.lower()]
    if len(matches) == 1:
        return matches[0][0]
    if not matches:
        names = ", ".join(f"#{i} {name}" for i, name in usable) or "none"
        raise AudioUnavailable(f"no {kind} device matches {spec!r}; {kind} devices: {names}")
    names = ", ".join(f"#{i} {name}" for i, name in matches)
    raise AudioUnavailable(f"{spec!r} matches several {kind} devices ({names}): "
                           "give more of the name, or the index")


def _stream_format(sd: Any, device: int, kind: str, preferred: int) -> tuple[int, int]:
    """(rate, channels) the device accepts: `preferred` if it can, else its default rate;
    mono if it can, else the fewest channels it has (mixed down or duplicated here)."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    info = sd.query_devices(device)
    rates = [preferred, int(info["default_samplerate"])]
    for channels in (1, min(2, int(info[f"max_{kind}_channels"]))):
        for rate in rates:
            try:
                check(device=device, samplerate=rate, channels=channels, dtype="float32")
            except Exception:
                continue
            return rate, channels
    raise DeviceLost(f"{kind} device {info['name']!r} accepts neither {preferred} Hz "
                     f"nor {rates[1]} Hz float32 audio")


class SampleFifo:
    """Float32 samples handed from the event loop to PortAudio's thread."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._offset = 0  # samples of _chunks[0] already read
        self._count = 0
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        return self._count

    def write(self, samples: np.ndarray) -> None:
        if len(samples):
            with self._lock:
                self._chunks.append(samples)
                self._count += len(samples)

    def read_into(self, out: np.ndarray) -> int:
        """Fill `out` (1-D) from the front; returns how many samples there were."""
        wanted = len(out)
        filled = 0
        with self._lock:
            while filled < wanted and self._chunks:
                chunk = self._chunks[0]
                take = min(wanted - filled, len(chunk) - self._offset)
                out[filled : filled + take] = chunk[self._offset : self._offset + take]
                filled += take
                self._offset += take
                if self._offset >= len(chunk):
                    self._chunks.popleft()
                    self._offset = 0
            self._count -= filled
        out[filled:] = 0.0
        return filled

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._offset = 0
            self._count = 0


@dataclass
class LocalAudioStats:
    input_blocks: int = 0
    dropped_input: int = 0  # blocks dropped because the session fell 2 s behind
    input_overflows: int = 0  # PortAudio reported lost input
    output_blocks: int = 0
    underruns: int = 0  # output blocks the jitter queue could not fill (silence played)
    jitter_frames: int = 0  # the jitter queue's target now, in 20 ms frames
    most_jitter_frames: int = 0  # its largest target so far
    output_underflows: int = 0  # PortAudio reported an output gap
    frames_pulled: int = 0  # session.output.next_frame() calls
    flushed_on_pause: int = 0  # barge-in pauses that emptied the jitter queue
    max_callback_gap_ms: float = 0.0  # longest wait between two output callbacks
    max_loop_lag_ms: float = 0.0  # longest wait for the loop to refill after a callback
    realtime_input: bool = False  # PortAudio's threads got real-time scheduling
    realtime_output: bool = False


REALTIME_PRIORITY = 10


def _prioritise_this_thread() -> bool:
    """Real-time (round-robin) scheduling for the calling PortAudio thread, where allowed
    (root, or an RLIMIT_RTPRIO such as the audio group's). On a small CPU busy with the
    models, a normal thread can wait longer than PortAudio's buffer lasts; a real-time
    one runs as soon as it wakes. It sleeps most of the time and does little when it
    runs (copy 20 ms), so it cannot starve the machine."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(REALTIME_PRIORITY))
    except (AttributeError, OSError):
        return False
    return True


class LocalAudio:
    """Connects one CallSession to a microphone and a speaker.

    Input: 20 ms blocks at the device's rate, mixed to mono, go through a bounded
    asyncio queue (2 s; more is dropped and counted, never blocks PortAudio) to a task
    that resamples them to 16 kHz and awaits `session.feed`, one block at a time, like
    WebRTC frames. Not merged when they pile up behind a busy loop: the echo guard
    judges each feed by its last 200 ms, so one long chunk of echo ending in silence
    would pass for the user's voice.

    Output: a small jitter queue between the session and the sound card. The output
    callback takes 20 ms from a FIFO and wakes a task on the loop, which keeps the FIFO
    at the jitter target by calling `session.output.next_frame()` and resampling to the
    device rate. So `next_frame()` runs on the loop, once per 20 ms on average, paced by
    the device's clock (as OutputAudioTrack paces it by the wall clock for WebRTC).

    The buffer: the target starts at `jitter_frames` (3 = 60 ms) and grows by a frame
    after each underrun (the callback found the FIFO short and played silence), up to
    `max_jitter_frames` (6 = 120 ms), and shrinks back a frame per 20 s without one.
    Why: the loop shares a few CPUs with whisper, llama.cpp and piper, and answers the
    callback's wake-up late while they run (tens of ms on 2 cores; `stats` keeps the
    worst lag). 60 ms covers that on most machines; a busy one pays a little more delay
    rather than crackling. Every frame here delays the reply and the moment a barge-in
    silences it, so the target stays as small as the machine allows; and when the
    session pauses the reply for a barge-in the FIFO is emptied at once, leaving only
    PortAudio's own buffer (`latency="low"`: 10-40 ms with ALSA) to play out.

    A stream that stops by itself (PortAudio error, device unplugged, sound server
    gone) or whose callback stalls for `stall_s` makes `wait_failed()` raise
    DeviceLost; the caller stops this object and may build a new one (reopen).
    """

    def __init__(self, session: CallSession, input_device: str | int | None = None,
                 output_device: str | int | None = None, *, jitter_frames: int = JITTER_FRAMES,
                 max_jitter_frames: int = MAX_JITTER_FRAMES, latency: str | float = "low",
                 preferred_rate: int = PREFERRED_RATE, max_input_blocks: int = MAX_INPUT_BLOCKS,
                 stall_s: float = STALL_S):
        self.session = session
        self.input_spec = input_device
        self.output_spec = output_device
        self.stats = LocalAudioStats()
        self.jitter_frames = max(1, jitter_frames)
        self.max_jitter_frames = max(self.jitter_frames, max_jitter_frames)
        self._jitter = self.jitter_frames
        self._underruns_seen = 0
        self._calm_since = time.monotonic()
        self.stats.jitter_frames = self.stats.most_jitter_frames = self._jitter
        self.latency = latency
        self.preferred_rate = preferred_rate
        self.stall_s = stall_s
        self.input_rate = 0
        self.output_rate = 0
        self.input_name = ""
        self.output_name = ""
        self._max_input_blocks = max_input_blocks
        self._loop: asyncio.AbstractEventLoop | None = None
        self._input_queue: asyncio.Queue[np.ndarray] | None = None
        self._fifo = SampleFifo()
        self._wake = asyncio.Event()
        self._streams: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: asyncio.Future[None] | None = None
        self._stopping = False
        self._last_callback: dict[str, float] = {}
        self._input_resampler: Resampler | None = None
        self._output_resampler: Resampler | None = None
        self._output_channels = 1
        self._input_channels = 1
        self._was_paused = False
        self._prioritised: set[str] = set()  # streams whose PortAudio thread was raised

    # --- opening ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open and start both streams. AudioUnavailable: no such device or no PortAudio;
        DeviceLost: the device refused to open (busy, gone)."""
        sd = sounddevice()
        self._loop = asyncio.get_running_loop()
        self._input_queue = asyncio.Queue(self._max_input_blocks)
        self._failure = self._loop.create_future()
        input_index = find_device(self.input_spec, "input")
        output_index = find_device(self.output_spec, "output")
        self.input_rate, self._input_channels = _stream_format(
            sd, input_index, "input", self.preferred_rate)
        self.output_rate, self._output_channels = _stream_format(
            sd, output_index, "output", self.preferred_rate)
        self.input_name = sd.query_devices(input_index)["name"]
        self.output_name = sd.query_devices(output_index)["name"]
        self._input_resampler = Resampler(MODEL_RATE)
        self._output_resampler = (None if self.output_rate == CALL_RATE
                                  else Resampler(self.output_rate))
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
        self._fill_output()  # the first callback finds the jitter queue full
        # PulseAudio can take a second or two to start a stream: the watchdog waits.
        later = time.monotonic() + STARTUP_S
        self._last_callback = {"input": later, "output": later}
        try:
            for stream in self._streams.values():
                stream.start()
        except Exception as exc:
            await self._close_streams()
            raise DeviceLost(f"could not start the audio device: {exc}") from exc
        self._tasks = [self._loop.create_task(self._guarded(work)) for work in
                       (self._pump_input(), self._keep_output_filled(), self._watch())]
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
        return device + self._jitter * BLOCK_S

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
            self.stats.realtime_input = _prioritise_this_thread()
        self._last_callback["input"] = time.monotonic()
        if status.input_overflow:
            self.stats.input_overflows += 1
        block = indata[:, 0].copy() if indata.shape[1] == 1 else indata.mean(axis=1)
        self._from_portaudio(self._queue_input, block)

    def _output_callback(self, outdata: np.ndarray, frames: int, time_info: Any,
                         status: Any) -> None:
        now = time.monotonic()
        if "output" not in self._prioritised:
            self._prioritised.add("output")
            self.stats.realtime_output = _prioritise_this_thread()
        if self.stats.output_blocks > 10:  # not the bursts while the stream starts
            gap = (now - self._last_callback["output"]) * 1000
            self.stats.max_callback_gap_ms = max(self.stats.max_callback_gap_ms, gap)
        self._last_callback["output"] = now
        self.stats.output_blocks += 1
        if status.output_underflow:
            self.stats.output_underflows += 1
        mono = outdata[:, 0]
        if self._fifo.read_into(mono) < frames and self.stats.output_blocks > SETTLE_BLOCKS:
            self.stats.underruns += 1
        if outdata.shape[1] > 1:
            outdata[:, 1:] = mono[:, None]
        self._from_portaudio(self._woken, now)

    # --- the event loop -----------------------------------------------------------------

    def _queue_input(self, block: np.ndarray) -> None:
        self.stats.input_blocks += 1
        assert self._input_queue is not None
        try:
            self._input_queue.put_nowait(block)
        except asyncio.QueueFull:
            self.stats.dropped_input += 1

    def _woken(self, at: float) -> None:
        if self.stats.output_blocks > 10:
            lag = (time.monotonic() - at) * 1000
            self.stats.max_loop_lag_ms = max(self.stats.max_loop_lag_ms, lag)
        self._wake.set()

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

    async def _pump_input(self) -> None:
        assert self._input_queue is not None and self._input_resampler is not None
        while True:
            block = await self._input_queue.get()
            samples = self._input_resampler.process(block, self.input_rate)
            try:
                await self.session.feed(samples)
            except Exception as exc:
                log.exception("the session failed on microphone input")
                raise SessionFailed(f"{type(exc).__name__}: {exc}") from exc

    def _fill_output(self) -> None:
        output = self.session.output
        if output.paused and not self._was_paused:
            # A barge-in paused the reply: what is queued here would still play.
            self._fifo.clear()
            self.stats.flushed_on_pause += 1
        self._was_paused = output.paused
        self._adapt_jitter()
        block = round(self.output_rate * BLOCK_S)
        target = self._jitter * block
        while self._fifo.available < target:
            frame = output.next_frame()
            self.stats.frames_pulled += 1
            if self._output_resampler is None:
                samples = frame.astype(np.float32) / 32768.0
            else:
                samples = self._output_resampler.process(frame, CALL_RATE)
            self._fifo.write(samples)

    def _adapt_jitter(self) -> None:
        now = time.monotonic()
        if self.stats.underruns != self._underruns_seen:
            self._underruns_seen = self.stats.underruns
            self._jitter = min(self.max_jitter_frames, self._jitter + 1)
            self._calm_since = now
        elif self._jitter > self.jitter_frames and now - self._calm_since >= JITTER_RELAX_S:
            self._jitter -= 1  # the FIFO drains by one frame: nothing is skipped
            self._calm_since = now
        self.stats.jitter_frames = self._jitter
        self.stats.most_jitter_frames = max(self.stats.most_jitter_frames, self._jitter)

    async def _keep_output_filled(self) -> None:
        while True:
            self._fill_output()
            self._wake.clear()
            await self._wake.wait()

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
        self._fifo.clear()
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
