"""The caller-side barge-in figure and its parts, on scripted timelines (no call, no sleep)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from voxlive.bench.bargein import noises
from voxlive.bench.bargein_breakdown import (
    PARTS,
    BargeInTimeline,
    frame_reached,
    last_loud_end,
    playing_at,
)
from voxlive.bench.bargein_browser import browser_breakdown
from voxlive.harness.client import first_loud_sample
from voxlive.latency import BargeInTiming

# A barge-in on one clock (seconds): the caller's first loud frame goes out at 10.000,
# reaches the VAD 2 ms later, the pause is decided 150 ms after that, the last loud reply
# frame was handed over 8 ms before the decision (it ends 12 ms after it), and reaches
# the caller 3 ms after it was sent.
SENT, REACHED, DECIDED, LAST_LOUD_SENT, LAST_LOUD_HEARD = 10.0, 10.002, 10.152, 10.144, 10.147


def test_the_parts_are_stamped_and_add_up_to_the_caller_figure() -> None:
    timing = BargeInTiming(onset=10.01, decided=DECIDED, turn=3)
    report = timing.report(LAST_LOUD_SENT)
    assert report["decided_at"] == DECIDED
    assert report["silent_at"] == pytest.approx(LAST_LOUD_SENT + 0.02)
    assert report["onset_to_silence_ms"] == pytest.approx(154.0)

    timeline = BargeInTimeline(sent=SENT, reached_vad=REACHED, decided=report["decided_at"],
                               silent_sent=report["silent_at"],
                               silent_heard=last_loud_end([9.9, 10.05, LAST_LOUD_HEARD], SENT))
    parts = timeline.parts()
    assert parts == pytest.approx({"network_receive_ms": 2.0, "detection_ms": 150.0,
                                   "output_ms": 12.0, "delivery_ms": 3.0,
                                   "caller_onset_to_silence_ms": 167.0})
    assert sum(parts[p] for p in PARTS) == pytest.approx(parts["caller_onset_to_silence_ms"])


def test_a_timeline_missing_a_stamp_is_refused() -> None:
    with pytest.raises(ValueError, match="every stamp"):
        BargeInTimeline(SENT, float("nan"), DECIDED, LAST_LOUD_SENT, LAST_LOUD_HEARD)


def test_the_first_loud_frame_is_found_by_rtp_time_or_by_level() -> None:
    received = [[0, 9.95, 0.0], [960, 9.97, 0.0], [1920, 9.99, 0.002], [2880, 10.012, 0.05],
                [3840, 10.03, 0.06]]
    assert frame_reached(received, SENT, pts=2880) == 10.012
    assert frame_reached(received, SENT, pts=99) is None  # not among the stamps
    assert frame_reached(received, SENT) == 10.012  # by level: loud, and not before `sent`
    assert frame_reached(received[:3], SENT) is None


def test_a_trial_counts_only_when_the_reply_was_playing_as_the_caller_spoke() -> None:
    assert playing_at([9.5, 9.93, 10.2], SENT)
    assert not playing_at([9.5, 10.2], SENT)  # a pause between sentences: nothing to cut
    event = {"decided_at": DECIDED, "audible_until_at": DECIDED, "received": [[0, REACHED, 0.1]]}
    report = browser_breakdown(event, {"sent": [SENT * 1000], "heard": [10_100.0]})
    assert report["breakdown_missing"] == "the reply was not playing"


def test_the_caller_marks_its_first_loud_sample() -> None:
    clip = np.zeros(4800, np.float32)
    clip[1000:] = 0.2
    assert first_loud_sample(clip) == 960  # the 10 ms block that holds it
    assert first_loud_sample(np.zeros(4800, np.float32)) == 0


def test_a_browser_callers_stamps_join_the_daemons_on_one_clock() -> None:
    to_wall = time.time() - time.monotonic()
    mono = SENT - to_wall  # the daemon stamps the monotonic clock
    event = {"type": "barge_in", "decided_at": DECIDED - to_wall,
             "audible_until_at": LAST_LOUD_SENT + 0.02 - to_wall,
             "received": [[0, REACHED - to_wall - 0.02, 0.0], [960, REACHED - to_wall, 0.04]]}
    probe = {"sent": [SENT * 1000, (SENT + 0.01) * 1000],
             "heard": [(SENT - 0.05) * 1000, (LAST_LOUD_HEARD + 0.0173) * 1000],
             "jitter": [4.0, 100]}
    report = browser_breakdown(event, probe)
    assert mono < SENT
    assert "received" not in report
    assert report["jitter_buffer_ms"] == pytest.approx(40.0)
    assert report["network_receive_ms"] == pytest.approx(2.0, abs=0.2)
    assert report["detection_ms"] == pytest.approx(150.0, abs=0.2)
    assert report["output_ms"] == pytest.approx(12.0, abs=0.2)
    total = sum(report[p] for p in PARTS)
    assert total == pytest.approx(report["caller_onset_to_silence_ms"], abs=0.3)


def test_the_corpus_has_noise_and_music() -> None:
    sounds = noises()
    assert {"click", "knock", "cough_burst", "pink_noise", "music"} <= set(sounds)
    for name in ("pink_noise", "music"):
        audio = sounds[name]
        assert audio.dtype == np.float32 and len(audio) > 48_000
        assert 0.01 < float(np.sqrt(np.mean(audio**2))) < 0.2, name
