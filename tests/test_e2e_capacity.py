"""`voxlive bench capacity` end to end, small: two calls on a daemon in its own process,
the audio path alone and then conversations (real WebRTC on loopback, the small
embedded profile). Figures are printed by the benchmark; this checks that it measures."""

from __future__ import annotations

import math

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
    # The shared STT and TTS counted their passes (voxlive/sched): batch sizes are known.
    assert level["mean_batch"].get("stt", 0) >= 1 and level["mean_batch"].get("tts", 0) >= 1
    print_levels("talk", [Level(**v) for v in result["levels"]], result["knee"], core=None)
