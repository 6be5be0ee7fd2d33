"""`voxlive local` for real: PortAudio (sounddevice) on virtual devices of a private
PulseAudio server (tests/pulse.py), with the real embedded models.

The test speaks into the "microphone" (paplay into the vox_in null sink, whose monitor
is the input device) and records the "speaker" (the vox_out null sink's monitor). For
the echo test a module-loopback carries the speaker back into the microphone, as a
laptop's microphone hears its own speakers.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.conftest import REPO, requires_espeak
from tests.pulse import PulseServer, PulseUnavailable
from tests.words import share_found
from voxlive.audio.echo import EchoGuard
from voxlive.backends.base import BackendError
from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.harness.speech import espeak, write_wav
from voxlive.local_cli import (
    LocalCall,
    echo_handling,
    half_duplex,
    run_local,
)
from voxlive.transports.local import AudioUnavailable, LocalAudio, LocalAudioStats
from voxlive.transports.terminal import TranscriptPrinter

pytestmark = requires_espeak

QUESTION = "What is the capital of France?"
STORY = "Tell me a long story about a dragon who lives in a castle."
INTERRUPTION = "Stop. What is the capital of France?"


@pytest.fixture(scope="module")
def pulse() -> Iterator[PulseServer]:
    """The private PulseAudio server, for this module's tests (environment restored after)."""
    try:
        from voxlive.transports.local import reinitialize_portaudio, sounddevice

        sounddevice()
    except AudioUnavailable as exc:
        pytest.skip(f"no local audio stack: {exc}")
    server = PulseServer()
    try:
        server.start()
    except PulseUnavailable as exc:
        pytest.skip(f"PulseAudio cannot run here: {exc}")
    try:
        reinitialize_portaudio()  # PortAudio lists devices when initialised: see "pulse" now
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def speech(pulse: PulseServer) -> dict[str, str]:
    """The test sentences as WAV files, spoken by espeak-ng."""
    files = {}
    for name, text in (("question", QUESTION), ("story", STORY),
                       ("interruption", INTERRUPTION)):
        path = pulse.dir / f"{name}.wav"
        write_wav(str(path), espeak(text, 48_000), 48_000)
        files[name] = str(path)
    return files


@pytest.fixture(scope="module")
def story_config(config: VoxliveConfig) -> VoxliveConfig:
    """Room for a story: the spoken-reply budget (two sentences) and the brief-answers
    prompt can end SmolLM2's story in under three seconds, before the user speaks over it."""
    return config.model_copy(update={"assistant": config.assistant.model_copy(update={
        "max_sentences": 8, "max_spoken_s": 30.0,
        "system_prompt": "You are a storyteller. Tell long stories of many sentences."})})


class Events:
    """The session's events with arrival times, and waiting for one."""

    def __init__(self) -> None:
        self.items: list[tuple[float, dict[str, Any]]] = []
        self._changed = asyncio.Event()

    def __call__(self, event: dict[str, Any]) -> None:
        self.items.append((time.monotonic(), event))
        self._changed.set()

    def since(self, start: float) -> list[dict[str, Any]]:
        return [e for t, e in self.items if t >= start]

    async def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float,
                       start: float = 0.0) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            for t, event in self.items:
                if t >= start and match(event):
                    return t, event
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [e["type"] for at, e in self.items if at >= start]
                raise AssertionError(f"no such event in {timeout} s; got {kinds}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


def is_state(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "state" and e["state"] == state


class Running:
    """A LocalCall running in the test's event loop, printing into a buffer."""

    def __init__(self, models: Models, config: VoxliveConfig, **audio_options: Any):
        self.events = Events()
        self.printed = io.StringIO()
        self.audios: list[LocalAudio] = []
        self.opened = asyncio.Event()
        self.call = LocalCall(
            models, config, vad_threshold=config.profile("embedded").vad.threshold,
            input_device="pulse", output_device="pulse",
            printer=TranscriptPrinter(self.printed, color=False), on_event=self.events,
            on_audio=self._opened, retry_delays=(0.2, 0.5, 1.0), audio_options=audio_options)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[int] | None = None

    def _opened(self, audio: LocalAudio) -> None:
        self.audios.append(audio)
        self.opened.set()

    async def __aenter__(self) -> Running:
        self.task = asyncio.ensure_future(self.call.run(self.stop))
        await asyncio.wait_for(self.opened.wait(), 15)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        status = await asyncio.wait_for(self.task, 15)
        assert status == 0, self.printed.getvalue()


def test_devices_are_listed_and_a_wrong_name_is_explained(pulse: PulseServer,
                                                          capsys: pytest.CaptureFixture) -> None:
    from voxlive.transports.local import find_device, list_devices

    assert "pulse" in list_devices()
    assert find_device("PULSE", "input") == find_device("pulse", "output")
    with pytest.raises(AudioUnavailable, match="no input device matches 'no-such-mic'"):
        find_device("no-such-mic", "input")
    with pytest.raises(AudioUnavailable, match="no audio device #999"):
        find_device(999, "output")
    args = SimpleNamespace(list_devices=True, input_device=None, output_device=None,
                           duration=None, half_duplex=False)
    assert run_local(None, None, args) == 0  # type: ignore[arg-type]  # lists before loading
    assert "pulse" in capsys.readouterr().out


async def test_a_device_that_is_not_there_ends_the_call_with_status_2(
        pulse: PulseServer, config: VoxliveConfig, embedded_models: Models) -> None:
    printed = io.StringIO()
    call = LocalCall(embedded_models, config, 0.5, input_device="no-such-mic",
                     printer=TranscriptPrinter(printed, color=False))
    assert await asyncio.wait_for(call.run(duration=10), 10) == 2
    assert "no input device matches 'no-such-mic'" in printed.getvalue()


def test_half_duplex_turns_barge_in_off_in_a_copy(config: VoxliveConfig) -> None:
    quiet = half_duplex(config)
    assert quiet.turn.barge_in is False and config.turn.barge_in is True
    assert quiet.turn.end_of_turn_silence_ms == config.turn.end_of_turn_silence_ms


def test_echo_handling_is_aec_or_half_duplex_where_livekit_is_missing(
        config: VoxliveConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("livekit.rtc", reason="the local extra (livekit) is not installed")
    with_aec = echo_handling(config)
    assert with_aec.cancel and with_aec.config.turn.barge_in
    assert "WebRTC AEC3 (livekit" in with_aec.description
    headset = echo_handling(config, cancel=False)
    assert not headset.cancel and headset.config.turn.barge_in
    monkeypatch.setitem(sys.modules, "livekit", None)  # as if it were not installed
    fallback = echo_handling(config)
    assert not fallback.cancel and fallback.config.turn.barge_in is False
    assert fallback.description.startswith("half duplex: no echo canceller")
    assert "pip install 'voxlive[local]'" in fallback.description


def test_the_transcript_shows_committed_turns_and_interruptions() -> None:
    out = io.StringIO()
    printer = TranscriptPrinter(out, color=True)
    for event in [
        {"type": "user_transcript", "turn": 1, "text": "What is"},  # the user went on
        {"type": "assistant_text", "turn": 1, "text": "What?", "final": False},
        {"type": "user_transcript", "turn": 2, "text": "What is the time?"},
        {"type": "turn_committed", "turn": 2},
        {"type": "assistant_text", "turn": 2, "text": "It is noon.", "final": False},
        {"type": "assistant_text", "turn": 2, "text": "It is noon. Enjoy", "final": False},
        {"type": "interrupted", "turn": 2, "heard_text": "It is"},
        {"type": "error", "stage": "llm", "message": "the server is down"},
    ]:
        printer(event)
    text = out.getvalue()
    plain = text.replace("\x1b[1m", "").replace("\x1b[1;36m", "").replace("\x1b[2m", "")
    plain = plain.replace("\x1b[31m", "").replace("\x1b[0m", "")
    assert plain.splitlines() == [
        "you: What is the time?",
        "voxlive: It is noon. Enjoy…",
        '[interrupted: heard "It is"]',
        "error (llm): the server is down",
    ]
    assert "\x1b[31merror (llm)" in text  # red


async def test_a_question_into_the_microphone_is_answered_on_the_speaker(
        pulse: PulseServer, speech: dict[str, str], config: VoxliveConfig,
        embedded_models: Models, tiny_en: Any) -> None:
    async with Running(embedded_models, config) as running:
        events = running.events
        recording = pulse.record("vox_out.monitor")
        asked = time.monotonic()
        await pulse.play(speech["question"])
        _, said = await events.wait_for(lambda e: e["type"] == "user_transcript", 30, asked)
        assert "capital" in said["text"].lower()
        _, reply = await events.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], 60, asked)
        assert reply["text"].strip()
        await events.wait_for(is_state("listening"), 60, asked + 0.1)
        await asyncio.sleep(0.5)  # the last frames through PortAudio and the sink
        heard = recording.stop()
        audio = running.audios[-1]
        stats = audio.stats

    printed = running.printed.getvalue()
    assert f"you: {said['text']}" in printed
    assert f"voxlive: {reply['text']}" in printed
    loud = np.abs(heard) > 0.02
    assert loud.any(), "no reply audio came out of the speaker"
    transcript = tiny_en.transcribe(heard)  # Whisper judges what the speaker played
    overlap = share_found(reply["text"], transcript)
    assert overlap >= 0.6, (reply["text"], transcript)
    assert stats.dropped_input == 0
    # Other work on a small CPU may starve the loop for a moment (the jitter queue then
    # grows); a steady stutter, from pacing gone wrong, would miss far more frames.
    assert stats.underruns <= max(5, stats.output_blocks // 10), stats
    print(f"\nlocal audio: {audio.input_rate}/{audio.output_rate} Hz, {stats}, "
          f"reply heard with {overlap:.0%} of its words: {transcript!r}")


def starved(before: LocalAudioStats, after: LocalAudioStats) -> bool:
    """Did the machine starve the audio between two snapshots of the stats? Then what
    the speaker played differs from what the session thinks it sent (gaps of silence),
    and its echo need not match."""
    return (after.output_underflows > before.output_underflows
            or after.underruns > before.underruns
            or after.input_overflows > before.input_overflows
            or after.max_callback_gap_ms > max(100.0, before.max_callback_gap_ms))


class EchoTrace:
    """What the echo guard decided while the reply was echoed, for assertions."""

    def __init__(self, guard: EchoGuard, since: float):
        self.trail: list[tuple[float, float, float]] = []  # (t, correlation, delay)
        check = guard.is_echo

        def traced(now: float) -> bool:
            echo = check(now)
            self.trail.append((round(time.monotonic() - since, 2),
                               round(guard.last_correlation, 2), round(guard.last_delay_s, 3)))
            return echo

        guard.is_echo = traced  # type: ignore[method-assign]

    def delays(self, threshold: float) -> list[float]:
        return [delay for _, correlation, delay in self.trail if correlation >= threshold]


async def test_its_own_echo_does_not_interrupt_the_reply_but_the_user_does(
        pulse: PulseServer, speech: dict[str, str], story_config: VoxliveConfig,
        embedded_models: Models) -> None:
    # Tried twice only if the first reply's echo passed for the user *while the machine
    # starved the audio* (other work on a small CPU): then the speaker played gaps the
    # echo guard could not know of. Without starvation a false interruption fails.
    for attempt in (1, 2):
        outcome = await echo_then_interrupt(pulse, speech, story_config, embedded_models)
        if outcome is None:
            return
        if attempt == 2 or not outcome[1]:
            raise AssertionError(f"the reply's echo interrupted it: {outcome[0]}")
        print(f"\nattempt {attempt}: the audio was starved, the echo passed for speech; "
              "trying again")


async def echo_then_interrupt(pulse: PulseServer, speech: dict[str, str],
                              config: VoxliveConfig, models: Models
                              ) -> tuple[str, bool] | None:
    """None if all went well; else (what happened, whether the audio was starved)."""
    # A device at 44.1 kHz: both directions go through the resamplers.
    async with Running(models, config, preferred_rate=44_100) as running:
        audio = running.audios[-1]
        assert audio.input_rate == 44_100 == audio.output_rate
        events = running.events
        # The speaker heard by the microphone at half its level, 60 ms later.
        loopback = pulse.loopback("vox_out.monitor", "vox_in", latency_ms=60, gain=0.5)
        mic = pulse.record("vox_in.monitor")
        speaker = pulse.record("vox_out.monitor")
        try:
            asked = time.monotonic()
            await pulse.play(speech["story"])
            speaking_at, _ = await events.wait_for(is_state("speaking"), 60, asked)
            assert running.call.session is not None and running.call.session.echo is not None
            trace = EchoTrace(running.call.session.echo, speaking_at)
            before = copy.copy(audio.stats)
            await asyncio.sleep(3.0)  # three seconds of the reply, echoed into the mic
            kinds = [e["type"] for e in events.since(speaking_at)]
            if "speech_started" in kinds or "interrupted" in kinds:
                timeline = [(round(t - speaking_at, 2), e["type"]) for t, e in events.items
                            if t >= speaking_at]
                return (f"events {timeline}; guard {trace.trail}; {audio.stats}",
                        starved(before, audio.stats))
            echo = mic.samples()[-2 * 16_000:]
            assert np.sqrt(np.mean(echo**2)) > 0.01, "the echo did not reach the microphone"

            said_at = time.monotonic()
            said = len(speaker.samples())  # by its length: parecord starts late, by ~1.4 s
            await pulse.play(speech["interruption"])
            _, interrupted = await events.wait_for(
                lambda e: e["type"] == "interrupted", 30, said_at)
            assert interrupted["heard_text"]
            await events.wait_for(is_state("user_speaking"), 1, said_at)
            await asyncio.sleep(0.3)
        finally:
            played = speaker.stop()
            mic.stop()
            pulse.unload(loopback)
        stats = audio.stats

    # The reply went quiet under the user's voice: from 1 s after the user started (0.3 s
    # on a quiet machine) for 0.6 s (the new answer only comes after the question).
    start, end = said + 16_000, said + int(1.6 * 16_000)
    assert np.abs(played[said - 16_000 : said]).max() > 0.05, (
        "the reply was playing before the user spoke")
    assert np.abs(played[start:end]).max() < 0.02, "the reply went on over the user"
    assert stats.flushed_on_pause >= 1
    delays = trace.delays(config.turn.echo_correlation)
    assert delays, f"the echo guard never recognised the echo: {trace.trail}"
    print(f"\nlocal audio at 44.1 kHz: {stats}; echo recognised at a delay of "
          f"{np.median(delays) * 1000:.0f} ms (from next_frame() to feed())")
    return None


async def test_with_echo_cancellation_its_echo_does_not_interrupt_but_the_user_does(
        pulse: PulseServer, speech: dict[str, str], story_config: VoxliveConfig,
        embedded_models: Models) -> None:
    """The same open-speaker situation with the echo canceller doing the work alone (the
    correlation guard off): the echo never reaches the VAD as speech, the user does."""
    pytest.importorskip("livekit.rtc", reason="the local extra (livekit) is not installed")
    config = story_config
    unguarded = config.model_copy(update={"turn": config.turn.model_copy(
        update={"echo_guard": False})})
    async with Running(embedded_models, unguarded, echo_cancellation=True) as running:
        audio = running.audios[-1]
        assert audio.echo_canceller is not None
        events = running.events
        loopback = pulse.loopback("vox_out.monitor", "vox_in", latency_ms=60, gain=0.5)
        mic = pulse.record("vox_in.monitor")
        try:
            asked = time.monotonic()
            await pulse.play(speech["story"])
            speaking_at, _ = await events.wait_for(is_state("speaking"), 60, asked)
            before = copy.copy(audio.stats)
            await asyncio.sleep(3.0)  # three seconds of the reply, echoed into the mic
            kinds = [e["type"] for e in events.since(speaking_at)]
            if "speech_started" in kinds or "interrupted" in kinds:
                timeline = [(round(t - speaking_at, 2), e["type"]) for t, e in events.items
                            if t >= speaking_at]
                raise AssertionError(f"the echo passed for speech: {timeline}; "
                                     f"starved: {starved(before, audio.stats)}; {audio.stats}")
            echo = mic.samples()[-2 * 16_000:]
            assert np.sqrt(np.mean(echo**2)) > 0.01, "the echo did not reach the microphone"
            said_at = time.monotonic()
            await pulse.play(speech["interruption"])
            _, interrupted = await events.wait_for(
                lambda e: e["type"] == "interrupted", 30, said_at)
            assert interrupted["heard_text"]
        finally:
            mic.stop()
            pulse.unload(loopback)
        canceller = audio.echo_canceller
    assert canceller.frames_played > 100 and canceller.frames_captured > 100
    print(f"\nAEC: {canceller.frames_played} frames played, {canceller.frames_captured} "
          f"captured, delay hint {canceller.delay_ms} ms; {audio.stats}")


async def test_a_lost_device_is_reported_and_reopened(
        pulse: PulseServer, config: VoxliveConfig, embedded_models: Models) -> None:
    async with Running(embedded_models, config) as running:
        first = running.audios[-1]
        await asyncio.sleep(0.5)
        # The sound server drops our playback stream, as when a USB headset is unplugged.
        ours = [i["index"] for i in pulse.clients("sink-inputs")
                if i.get("driver") == "protocol-native.c"]
        assert ours, pulse.clients("sink-inputs")
        running.opened.clear()
        for index in ours:
            pulse.kill("sink-input", index)
        await asyncio.wait_for(running.opened.wait(), 15)
        assert running.audios[-1] is not first
        for _ in range(100):  # PulseAudio may take a second or two to start a stream
            await asyncio.sleep(0.1)
            if running.audios[-1].stats.output_blocks > 20:
                break
        assert running.audios[-1].stats.output_blocks > 20, (
            "the reopened stream does not play", running.printed.getvalue(),
            running.audios[-1].stats)
    printed = running.printed.getvalue()
    assert "audio device problem: the output stream stopped" in printed, printed
    assert "reopening the audio device in 0.2 s (attempt 1 of 3)" in printed, printed
    assert "audio device back" in printed, printed


class DownLLM:
    """A language model whose server is down."""

    description = "down"
    supports_tools = False

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        raise BackendError("llm", "the language model server is down")
        yield ""  # an async generator, like the real ones

    async def aclose(self) -> None:
        return None


async def test_a_failing_model_is_reported_and_the_next_turn_tries_again(
        pulse: PulseServer, speech: dict[str, str], config: VoxliveConfig,
        embedded_models: Models) -> None:
    models = dataclasses.replace(embedded_models, llm=DownLLM())
    async with Running(models, config) as running:
        events = running.events
        asked = time.monotonic()
        await pulse.play(speech["question"])
        _, error = await events.wait_for(lambda e: e["type"] == "error", 30, asked)
        assert error["stage"] == "llm"
        await events.wait_for(is_state("listening"), 10, asked + 0.1)

        models.llm = embedded_models.llm  # the server is back
        asked = time.monotonic()
        await pulse.play(speech["question"])
        _, reply = await events.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], 60, asked)
        assert reply["text"].strip()
        # The reply may be ready while the end of the turn is still being decided: the
        # terminal prints a turn once it is committed.
        await events.wait_for(
            lambda e: e["type"] == "turn_committed" and e["turn"] == reply["turn"], 15, asked)
    printed = running.printed.getvalue()
    assert "error (llm): the language model server is down" in printed, printed
    assert f"voxlive: {reply['text']}" in printed


CTRL_C_SCRIPT = """
import sys
from types import SimpleNamespace
import numpy as np
import voxlive.models
from voxlive.backends.loader import Models, load_stage
from voxlive.config import load_config
from voxlive.local_cli import run_local

class Mute:  # the test is about the audio and the exit, not about the models
    description = "mute"
    sample_rate = 16000
    def transcribe(self, audio): return ""
    def synthesize(self, text, style="default", stop=None): yield np.zeros(160, np.float32)
    async def stream(self, messages):
        yield "ok"
    async def aclose(self): return None

config = load_config(sys.argv[1])
vad, _ = load_stage("vad", config.profile("embedded"))
voxlive.models.load_or_explain = lambda c, p: ("embedded", Models(vad, Mute(), Mute(), Mute()))
args = SimpleNamespace(list_devices=False, input_device="pulse", output_device="pulse",
                       duration=float(sys.argv[2]), half_duplex=True, audio_latency=0.05)
sys.exit(run_local(config, None, args))
"""


def start_cli(pulse: PulseServer, duration: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(REPO / "models.yaml"), str(duration)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float) -> str:
    """Read stdout until a line with `text` (the process keeps running)."""
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    process.kill()
    raise AssertionError(f"no {text!r} in {seen}; stderr: {process.stderr.read()}")


def test_ctrl_c_and_duration_end_the_command_cleanly(pulse: PulseServer) -> None:
    process = start_cli(pulse, duration=60)
    try:
        out = wait_for_line(process, "Ctrl-C quits", 30)
        assert "half duplex" in out
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    assert "bye" in rest

    timed = start_cli(pulse, duration=1.0)
    try:
        out, err = timed.communicate(timeout=30)
    finally:
        timed.kill()
    assert timed.returncode == 0, err
    assert "Ctrl-C quits" in out and "Traceback" not in err


def test_the_helper_leaves_no_stray_modules(pulse: PulseServer) -> None:
    modules = pulse.pactl("list", "short", "modules").stdout
    assert "module-loopback" not in modules
    assert Path(str(pulse.socket)).exists()
