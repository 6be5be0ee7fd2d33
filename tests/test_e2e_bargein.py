"""Barge-in end to end over real WebRTC (aiortc caller) on the real embedded stack.

The caller asks for a story, talks over the answer about a second after it starts,
and the test checks what a person would notice: the reply stops, the daemon says what
was heard, the next answer comes, and the history holds only the heard words.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import SMALL_PROFILE, requires_espeak
from tests.words import words
from voxlive.backends.loader import Models
from voxlive.bench.bargein import caller_breakdown
from voxlive.bench.bargein_breakdown import PARTS, playing_at
from voxlive.config import VoxliveConfig
from voxlive.harness.client import CallClient
from voxlive.harness.speech import espeak
from voxlive.server.app import Daemon, running
from voxlive.transports.rtp_receive import PassThroughAudioBuffer
from voxlive.turn.bookkeeping import CUT_MARK

pytestmark = requires_espeak

STORY = "Tell me a long story about a dragon who lives in a castle."
INTERRUPTION = "Stop. What is the capital of France?"


@pytest.fixture
async def daemon_url(config: VoxliveConfig, embedded_models: Models
                     ) -> AsyncIterator[tuple[Daemon, str]]:
    daemon = Daemon(config, SMALL_PROFILE, embedded_models, host="127.0.0.1")
    async with running(daemon) as url:
        yield daemon, url


async def ask_and_wait_for_speech(client: CallClient) -> int:
    client.mic.say(espeak(STORY, 48_000))
    speaking = await client.wait_for(
        lambda e: e["type"] == "state" and e["state"] == "speaking", timeout=60)
    return client.events.index(speaking)


async def test_talking_over_the_answer_stops_it_and_truncates_the_history(
        daemon_url: tuple[Daemon, str]) -> None:
    daemon, url = daemon_url
    client = CallClient(url)
    await client.connect()
    try:
        mark = await ask_and_wait_for_speech(client)
        await asyncio.sleep(1.0)  # the caller listens for a second, then talks over it
        client.mic.say(espeak(INTERRUPTION, 48_000))
        interrupted = await client.wait_for(lambda e: e["type"] == "interrupted", 30, mark)
        said_at = client.mic.said_at[-1]

        story_turn = interrupted["turn"]
        spoken = [e["text"] for e in client.events
                  if e["type"] == "assistant_text" and e["turn"] == story_turn]
        heard = interrupted["heard_text"]
        assert heard, "about a second of the reply was played"
        assert words(spoken[-1])[: len(words(heard))] == words(heard)  # a prefix of the reply
        assert len(words(heard)) < len(words(spoken[-1])) or not spoken[-1].endswith(".")

        # The reply went quiet soon after the caller started talking, and stayed quiet
        # while the caller spoke (the new answer only comes after the question).
        answer = await client.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"]
            and e["turn"] != story_turn, timeout=60, start=mark)
        loud = client.loud_frames_at()
        new_answer_audio = await client.wait_for(
            lambda e: e["type"] == "state" and e["state"] == "speaking", 30,
            start=client.events.index(interrupted))
        assert new_answer_audio
        quiet_from = said_at + 0.6
        quiet_until = said_at + 1.5
        assert not [t for t in loud if quiet_from <= t <= quiet_until]
        assert [t for t in loud if said_at - 1.0 <= t <= said_at]  # it was speaking before

        # The history holds the truncated story, marked as cut off, then the new turn.
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=60, start=client.events.index(answer))
        [call] = daemon.calls.values()
        history = call.session.conversation.turns
        story_reply = history[1]
        question = next(e["text"] for e in client.events if e["type"] == "user_transcript")
        assert history[0]["role"] == "user" and history[0]["content"].endswith(question)
        assert story_reply == {"role": "assistant", "content": f"{heard} {CUT_MARK}"}
        # The new user turn is the interruption, as transcribed (tiny.en, the start of it
        # spoken over the reply: "France" has come out as "and friends").
        interruption = next(e["text"] for e in client.events if e["type"] == "user_transcript"
                            and e["turn"] == answer["turn"])
        assert history[2]["role"] == "user"
        assert history[2]["content"].endswith(interruption)
        assert "capital" in interruption.lower()
        assert answer["text"]
    finally:
        await client.close()


async def test_the_reply_echoed_into_the_microphone_does_not_interrupt_it(
        daemon_url: tuple[Daemon, str]) -> None:
    _, url = daemon_url
    client = CallClient(url)
    client.mic.echo_gain, client.mic.echo_delay_s = 0.5, 0.12  # a laptop's open speakers
    await client.connect()
    try:
        mark = await ask_and_wait_for_speech(client)
        # A short reply's text can be final before its first audio plays (CI saw it):
        # look for it from the call's start; the played reply ends in "listening".
        final = await client.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], timeout=90)
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=90, start=max(mark, client.events.index(final)))
        kinds = [e["type"] for e in client.events[mark:]]
        assert "interrupted" not in kinds, kinds
        assert "speech_started" not in kinds, kinds  # the echo never counted as the user
    finally:
        await client.close()


async def test_the_caller_side_stop_is_measured_and_its_parts_reported(
        daemon_url: tuple[Daemon, str]) -> None:
    """What `voxlive bench bargein` measures, on one call: the daemon hears the caller
    without a jitter wait, the reply goes quiet, `interrupted` arrives, and the caller-side
    figure splits into its stamped parts (their sizes are the benchmark's business)."""
    daemon, url = daemon_url
    client = CallClient(url)
    await client.connect()
    try:
        [call] = daemon.calls.values()
        buffers = [getattr(r, "_RTCRtpReceiver__jitter_buffer", None)
                   for r in call.pc.getReceivers() if r.track and r.track.kind == "audio"]
        assert buffers and all(isinstance(b, PassThroughAudioBuffer) for b in buffers)

        interruption = espeak(INTERRUPTION, 48_000)  # made first: espeak-ng blocks the loop
        mark = await ask_and_wait_for_speech(client)
        await asyncio.sleep(1.0)
        while not playing_at(client.loud_frames_at(), time.monotonic(), within_s=0.04):
            await asyncio.sleep(0.005)  # talk over the reply's voice, not a pause in it
        client.mic.say(interruption)
        barge_in = await client.wait_for(lambda e: e["type"] == "barge_in", 30, mark)
        await client.wait_for(lambda e: e["type"] == "interrupted", 30, mark)
        report = caller_breakdown(client, barge_in)
        print(f"\ncaller-side barge-in: {report}")
        assert "breakdown_missing" not in report, report
        total = report["caller_onset_to_silence_ms"]
        assert sum(report[p] for p in PARTS) == pytest.approx(total, abs=0.5)
        assert report["network_receive_ms"] >= 0 and report["delivery_ms"] >= 0
        # Quiet from the last loud frame the caller heard until the interruption is over.
        sent = client.mic.sound_at[-1]
        silent_heard = sent + total / 1000
        said_for = len(interruption) / 48_000
        assert not [t for t in client.loud_frames_at() if silent_heard < t < sent + said_for]
    finally:
        await client.close()
