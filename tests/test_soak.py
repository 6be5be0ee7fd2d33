"""A short soak in CI: call cycles (some abandoned without hanging up) and a concurrent
load against the daemon; after warm-up, threads, fds, tasks and memory must come back
to the baseline, and no call may be left holding a slot. `voxlive bench soak` runs the
same code at any size and prints the figures; `voxlive bench fuzz` likewise for the
fuzz test below."""

from __future__ import annotations

from tests.conftest import requires_espeak
from tests.test_server_guard import daemon_at, with_limits
from voxlive.backends.loader import Models
from voxlive.bench.fuzz import fuzz
from voxlive.bench.soak import print_report, soak
from voxlive.config import VoxliveConfig

pytestmark = requires_espeak

RSS_TOLERANCE = 0.05  # of the post-warm-up baseline (the target)
RSS_SLACK_MB = 15.0  # allocator noise on a short run


async def test_fifty_call_cycles_leave_nothing_behind(double_config: VoxliveConfig,
                                                      double_models: Models) -> None:
    config = with_limits(double_config, max_calls=16, no_audio_timeout_s=1.5,
                         offers_per_minute=10_000)
    async with daemon_at(config, double_models) as (url, daemon):
        report = await soak(url, daemon, cycles=50, abandon_every=10, warm_up=10,
                            concurrent=2, hold_s=2.0)
    print_report(report)  # shown with pytest -s, and on failure
    growth = report.growth()
    assert report.failed == 0 and report.abandoned == 5
    assert report.stuck_calls == 0 and report.after["live_calls"] == 0
    # executor workers start on demand up to max_workers and stay: a plateau, not growth
    assert growth["threads"] - growth["workers"] <= 2, report
    assert growth["fds"] <= 6, report
    assert growth["tasks"] <= 2, report
    assert growth["rss_mb"] <= max(RSS_TOLERANCE * report.baseline["rss_mb"], RSS_SLACK_MB), report


async def test_a_small_seeded_fuzz_finds_no_500_and_no_dead_call(
        double_config: VoxliveConfig, double_models: Models) -> None:
    config = with_limits(double_config, max_calls=64, connect_timeout_s=1.0,
                         offers_per_minute=10**9, messages_per_second=1000)
    async with daemon_at(config, double_models) as (url, daemon):
        report = await fuzz(url, offers=150, messages=150, seed=16, seconds=120)
        print(report)
        assert report.server_errors == 0 and report.not_json == 0, report
        assert report.call_alive, report
        assert sum(report.statuses.values()) == report.offers == 150
