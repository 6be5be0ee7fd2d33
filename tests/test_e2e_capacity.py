"""`voxlive bench capacity` end to end, small: two calls on a daemon in its own process,
the audio path alone and then conversations (real WebRTC on loopback, the small
embedded profile). Figures are printed by the benchmark; this checks that it measures."""

from __future__ import annotations

import math

import numpy as np

from tests.conftest import SMALL_PROFILE, requires_espeak
from voxlive.bench.capacity import Level, print_levels, ramp
from voxlive.config import VoxliveConfig


async def test_two_listening_calls_are_measured(config: VoxliveConfig) -> None:
    result = await ramp(config, SMALL_PROFILE, "listen", [2], hold_s=4.0, compare=False,
                        core=None)
    (level,) = result["levels"]
    assert level["connected"] == 2 and level["failed"] == 0
    assert level["realtime"] > 0.5  # reply frames (silence) arrived all along
    assert level["cpu_cores"] > 0 and level["rss_mb"] > 0
    assert level["turns"] == 0  # noise: no turn started
    assert 0 <= level["steal"] <= 1  # the machine's cores, read from /proc/stat
    print_levels("listen", [Level(**v) for v in result["levels"]], result["knee"], core=None)


@requires_espeak
async def test_two_conversations_are_measured_with_the_shared_stages(
        config: VoxliveConfig) -> None:
    result = await ramp(config, SMALL_PROFILE, "talk", [2], hold_s=12.0, compare=False,
                        core=None)
    (level,) = result["levels"]
    assert level["connected"] == 2 and level["turns"] >= 2
    assert math.isfinite(level["v2v_p50_ms"]) and level["first_audio_queue_ms"] >= 0
    # The shared stages counted their passes (voxlive/sched): batch sizes are known. The
    # small profile's Moonshine is not batched (one utterance at a time under its lock);
    # a faster-whisper STT is (tests/test_sched_models.py).
    batched = ["tts", *(["stt"] if config.profile(SMALL_PROFILE).stt.backend
                         == "faster-whisper" else [])]
    assert all(level["mean_batch"].get(stage, 0) >= 1 for stage in batched), level["mean_batch"]
    print_levels("talk", [Level(**v) for v in result["levels"]], result["knee"], core=None)


@requires_espeak
async def test_the_lean_callers_microphone_reaches_the_daemon_as_audio(
        embedded_server: str) -> None:
    """The listening callers send Opus packets encoded once (cheap enough for 16 callers
    on one core); the daemon must hear them as it hears any caller: a question said that
    way is transcribed."""
    from tests.words import says
    from voxlive.audio.resample import CALL_RATE
    from voxlive.bench.capacity_calls import LoopingMic
    from voxlive.harness.client import CallClient
    from voxlive.harness.speech import espeak, silence

    question = "What is the capital of France?"
    client = CallClient(embedded_server)
    mic = LoopingMic(np.concatenate([silence(0.5, CALL_RATE), espeak(question, CALL_RATE),
                                     silence(3.0, CALL_RATE)]))
    client.pc.getTransceivers()[0].sender.replaceTrack(mic)
    await client.connect()
    try:
        said = await client.wait_for(lambda e: e["type"] == "user_transcript", timeout=60)
        assert says(said["text"], question), said
        assert mic.sent > 0
    finally:
        await client.close()
