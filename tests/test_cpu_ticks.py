"""The capacity benchmark reads how much of a core the hypervisor took (steal), so that a
level that lost its core to another guest is not read as voxlive's failure."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from voxlive.bench import cpu_ticks
from voxlive.bench.capacity import Level, knee
from voxlive.bench.cpu_ticks import Ticks, read_ticks, shares

#        user nice system idle iowait irq softirq steal guest guest_nice
STAT_BEFORE = """cpu  300 0 100 1000 0 0 0 50 0 0
cpu0 200 0 50 400 0 0 0 50 0 0
cpu1 100 0 50 600 0 0 0 0 0 0
intr 12345
"""
STAT_AFTER = """cpu  500 0 200 1100 0 0 0 150 0 0
cpu0 300 0 100 420 0 0 0 130 0 0
cpu1 200 0 100 680 0 0 0 20 0 0
intr 12399
"""


def _read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
          cores: set[int] | None) -> Ticks | None:
    stat = tmp_path / "stat"
    stat.write_text(text)
    monkeypatch.setattr(cpu_ticks, "PROC_STAT", stat)
    return read_ticks(cores)


def test_one_core_busy_and_stolen_between_two_readings(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    before = _read(tmp_path, monkeypatch, STAT_BEFORE, {0})
    after = _read(tmp_path, monkeypatch, STAT_AFTER, {0})
    assert before == Ticks(total=700, idle=400, steal=50)
    # 250 ticks went by on cpu0: 20 idle, 230 busy, 80 of those stolen
    assert shares(after, before) == (round(230 / 250, 3), round(80 / 250, 3))


def test_all_cores_or_a_set_of_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _read(tmp_path, monkeypatch, STAT_BEFORE, None) == Ticks(1450, 1000, 50)
    assert _read(tmp_path, monkeypatch, STAT_BEFORE, {0, 1}) == Ticks(1450, 1000, 50)
    assert _read(tmp_path, monkeypatch, STAT_BEFORE, {1}) == Ticks(750, 600, 0)


def test_no_proc_stat_means_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_ticks, "PROC_STAT", tmp_path / "missing")
    assert read_ticks(None) is None
    assert all(math.isnan(x) for x in shares(None, None))


def test_a_failed_level_on_a_stolen_core_says_so() -> None:
    gaps = {"variant": "fixed", "calls": 16, "connected": 16, "realtime": 1.0,
            "cpu_cores": 0.9, "server_gaps_over_60ms": 300}
    stolen = knee([Level(**gaps, steal=0.2, callers_busy=0.5)], "listen")
    assert stolen["calls"] == 16
    assert any("hypervisor took 20%" in why for why in stolen["why"])
    quiet = knee([Level(**gaps, steal=0.01, callers_busy=0.5)], "listen")
    assert not any("hypervisor" in why for why in quiet["why"])
    fine = knee([Level(**{**gaps, "server_gaps_over_60ms": 0}, steal=0.3)], "listen")
    assert fine["calls"] is None  # steal alone does not fail a level
