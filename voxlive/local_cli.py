"""`voxlive local`: talk to the assistant through this machine's microphone and speaker.

The same turn core, models and events as a WebRTC call (voxlive.session), with
voxlive.transports.local as the audio shell (and voxlive.transports.local_camera as the
camera when the profile can see), and a live transcript on stdout.

Echo: open speakers are heard by the microphone, and no browser cancels that here.
With livekit installed (the `local` extra) the transport cancels the echo of what it
plays (voxlive.audio.aec), so the user can talk over the reply; without it
`voxlive local` falls back to half duplex (it stops listening while it speaks) and says
so. `--no-echo-cancellation` is for headsets (full duplex, nothing to cancel),
`--half-duplex` forces the fallback. It runs
until Ctrl-C (or SIGTERM, or `--duration` seconds). A lost sound device is reported
and reopened with backoff; a failing model is reported (in red on a terminal) by the
session's error events, and the next turn tries it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import voxlive.models
from voxlive.audio.aec import AecUnavailable, aec_description
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.session import CallSession
from voxlive.transports.local import (
    AudioUnavailable,
    DeviceLost,
    LocalAudio,
    SessionFailed,
    list_devices,
    reinitialize_portaudio,
    sounddevice,
)
from voxlive.transports.local_camera import CameraFrame, LocalCamera
from voxlive.transports.terminal import TranscriptPrinter

log = logging.getLogger(__name__)

RETRY_DELAYS_S: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Waits before reopening a lost device; after the last one `voxlive local` gives up."""
HEALTHY_S = 30.0
"""Audio that ran this long since the last reopen starts the retries afresh."""

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class LocalCall:
    """What one `voxlive local` run needs besides the models; the tests build it too."""

    models: Models
    config: VoxliveConfig
    vad_threshold: float
    input_device: str | int | None = None
    output_device: str | int | None = None
    printer: TranscriptPrinter = field(default_factory=TranscriptPrinter)
    on_event: EventSink | None = None
    on_audio: Callable[[LocalAudio], None] | None = None  # each (re)opened LocalAudio
    retry_delays: Sequence[float] = RETRY_DELAYS_S
    audio_options: dict[str, Any] = field(default_factory=dict)
    echo_cancellation: bool = False  # cancel the speaker's echo in the transport (AEC)
    camera: int | str | None = None  # a camera index or video source; None: no camera
    camera_options: dict[str, Any] = field(default_factory=dict)
    session: CallSession | None = None
    local_camera: LocalCamera | None = None

    def _event(self, event: dict[str, Any]) -> None:
        self.printer(event)
        if self.on_event is not None:
            self.on_event(event)

    def _new_session(self) -> CallSession:
        self.session = CallSession(self.models, self.config, self.vad_threshold, self._event,
                                   call_id="local")
        return self.session

    def _start_camera(self) -> None:
        """Open the camera in its thread, when there is one to open and a vision stage
        to look with. Its frames go to whichever session is current."""
        if self.camera is None or self.models.vision is None:
            return
        loop = asyncio.get_running_loop()

        def opened(frame: CameraFrame) -> None:  # camera thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._camera_opened, frame)

        def problem(text: str) -> None:  # camera thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.printer.error, f"camera problem: {text}")

        self.local_camera = LocalCamera(self.camera, on_open=opened, on_problem=problem,
                                        **self.camera_options)
        try:
            self.local_camera.start()
        except ImportError as exc:
            self.printer.error(f"no camera: OpenCV is missing ({exc}); "
                               "pip install 'voxlive[vision]'")
            self.local_camera = None

    def _camera_opened(self, frame: CameraFrame) -> None:
        camera = self.local_camera
        if camera is None or self.session is None:
            return
        if camera.opened > 1:
            self.printer.notice(f"camera back: {camera.name}")
        else:
            self.printer.notice(f"looking through {camera.name}")
        self.session.on_camera_frame(frame)

    async def run(self, stop: asyncio.Event | None = None,
                  duration: float | None = None) -> int:
        """Talk until `stop` is set or `duration` seconds pass (0), or the device is
        gone for good (1), or it cannot be used at all (2)."""
        stop = stop if stop is not None else asyncio.Event()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration if duration is not None else None
        session = self._new_session()
        failures = 0
        opened_before = False
        opened_at: float | None = None
        self._start_camera()
        try:
            while True:
                options = {"echo_cancellation": self.echo_cancellation, **self.audio_options}
                audio = LocalAudio(session, self.input_device, self.output_device, **options)
                try:
                    await audio.start()
                    opened_at = loop.time()
                    self._announce(audio, again=opened_before)
                    opened_before = True
                    if self.on_audio is not None:
                        self.on_audio(audio)
                    if await self._until(stop, deadline, audio.wait_failed()):
                        return 0
                except AudioUnavailable as exc:
                    if not opened_before:
                        self.printer.error(f"voxlive local: {exc}")
                        return 2
                    problem: Exception = DeviceLost(str(exc))  # unplugged: wait for it
                except (DeviceLost, SessionFailed) as exc:
                    problem = exc
                else:  # wait_failed() ends only by raising; never spin here regardless
                    problem = DeviceLost("the audio stopped")
                finally:
                    await audio.stop()
                    self._report_stats(audio)
                if opened_at is not None and loop.time() - opened_at >= HEALTHY_S:
                    failures = 0
                opened_at = None
                if isinstance(problem, SessionFailed):
                    self.printer.error(f"the conversation failed ({problem}); starting afresh")
                    await session.close()
                    session = self._new_session()
                    if self.local_camera is not None and self.local_camera.is_open:
                        session.on_camera_frame(self.local_camera.frame)
                else:
                    self.printer.error(f"audio device problem: {problem}")
                if failures >= len(self.retry_delays):
                    self.printer.error("giving up: the audio device did not come back "
                                       f"({failures} attempts to reopen it)")
                    return 1
                delay = self.retry_delays[failures]
                failures += 1
                self.printer.notice(f"reopening the audio device in {delay:g} s "
                                    f"(attempt {failures} of {len(self.retry_delays)})")
                if await self._until(stop, deadline, asyncio.sleep(delay)) is True:
                    return 0
                with contextlib.suppress(Exception):
                    reinitialize_portaudio()  # see devices plugged in meanwhile
        finally:
            if self.local_camera is not None:
                camera, self.local_camera = self.local_camera, None
                await loop.run_in_executor(None, camera.stop)
            await session.close()

    async def _until(self, stop: asyncio.Event, deadline: float | None, work: Any) -> bool:
        """Await `work` (which may raise) unless `stop` or the deadline comes first:
        True if they did, False if `work` finished."""
        loop = asyncio.get_running_loop()
        waiters = [asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())]
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for waiter in waiters:
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        if waiters[0] in done:
            waiters[0].result()  # raises the failure, if any
            return False
        return True

    def _announce(self, audio: LocalAudio, again: bool) -> None:
        if again:
            self.printer.notice(f"audio device back: {audio.input_name} / {audio.output_name}")
            return
        self.printer.notice(
            f"listening on {audio.input_name} ({audio.input_rate} Hz), speaking on "
            f"{audio.output_name} ({audio.output_rate} Hz); about "
            f"{(audio.input_latency + audio.output_latency) * 1000:.0f} ms of audio buffers. "
            "Speak; Ctrl-C quits."
        )

    def _report_stats(self, audio: LocalAudio) -> None:
        stats = audio.stats
        if stats.underruns or stats.dropped_input or stats.input_overflows:
            log.info("local audio: %d output underruns in %d blocks, %d input blocks dropped, "
                     "%d input overflows", stats.underruns, stats.output_blocks,
                     stats.dropped_input, stats.input_overflows)


def half_duplex(config: VoxliveConfig) -> VoxliveConfig:
    """The same config with barge-in off: the microphone is ignored while it speaks."""
    return config.model_copy(update={"turn": config.turn.model_copy(update={"barge_in": False})})


@dataclass(frozen=True)
class EchoHandling:
    """How `voxlive local` keeps its own voice from interrupting it."""

    config: VoxliveConfig  # half duplex where nothing cancels the echo
    cancel: bool  # the transport cancels the echo (AEC)
    description: str  # for the start-up line and `voxlive doctor`


def describe_echo_handling() -> str:
    """What `voxlive local` would do about echo here (for `voxlive doctor`)."""
    try:
        return f"echo cancellation: {aec_description()}"
    except AecUnavailable as exc:
        return f"half duplex: no echo canceller ({exc})"


def echo_handling(config: VoxliveConfig, *, half: bool = False,
                  cancel: bool = True) -> EchoHandling:
    """AEC when asked for and available; half duplex when asked for, or as the fallback
    where livekit is missing (logged, and said on the start-up line); neither with
    `cancel=False` (a headset: full duplex, nothing to cancel)."""
    if half:
        return EchoHandling(half_duplex(config), False, "half duplex (--half-duplex)")
    if not cancel:
        return EchoHandling(config, False, "no echo cancellation (--no-echo-cancellation)")
    try:
        return EchoHandling(config, True, f"echo cancellation: {aec_description()}")
    except AecUnavailable as exc:
        log.warning("falling back to half duplex: %s", exc)
        return EchoHandling(half_duplex(config), False,
                            f"half duplex: no echo canceller ({exc})")


def run_local(config: VoxliveConfig, profile_name: str | None, args: Any) -> int:
    """The `voxlive local` command. `args`: input_device, output_device, list_devices,
    duration (seconds or None), half_duplex, and optionally audio_latency (PortAudio's
    buffer in seconds; default "low"), no_echo_cancellation, camera (index or video
    source; default 0), no_camera. Returns the exit status."""
    try:
        return _run_local(config, profile_name, args)
    except KeyboardInterrupt:  # Ctrl-C while the models load
        print("\nbye", file=sys.stderr)
        return 0


def _run_local(config: VoxliveConfig, profile_name: str | None, args: Any) -> int:
    printer = TranscriptPrinter()
    try:
        sounddevice()
        if getattr(args, "list_devices", False):
            print(list_devices())
            return 0
    except AudioUnavailable as exc:
        printer.error(f"voxlive local: {exc}")
        return 2
    name, models = voxlive.models.load_or_explain(config, profile_name)  # patched by tests
    echo = echo_handling(config, half=getattr(args, "half_duplex", False),
                         cancel=not getattr(args, "no_echo_cancellation", False))
    config = echo.config
    latency = getattr(args, "audio_latency", None)
    camera: int | str | None = None  # looks only where the profile has a vision stage
    if models.vision is not None and not getattr(args, "no_camera", False):
        wanted = getattr(args, "camera", None)
        camera = 0 if wanted is None else int(wanted) if str(wanted).isdigit() else wanted
    call = LocalCall(
        models, config, config.profile(name).vad.threshold,
        input_device=getattr(args, "input_device", None),
        output_device=getattr(args, "output_device", None),
        printer=printer,
        audio_options={} if latency is None else {"latency": float(latency)},
        echo_cancellation=echo.cancel,
        camera=camera,
    )
    mode = "half duplex" if not config.turn.barge_in else "talk over it to interrupt"
    printer.notice(f"voxlive ({name} profile, {mode}; {echo.description})")
    return asyncio.run(_main(call, getattr(args, "duration", None)))


async def _main(call: LocalCall, duration: float | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C while shutting down: quit now
            os._exit(130)
        stop.set()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_signal)
            installed.append(signum)
    try:
        status = await call.run(stop, duration)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await call.models.aclose()
    if stop.is_set():
        call.printer.notice("bye")
    return status
