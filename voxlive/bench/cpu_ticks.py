"""How busy a set of cores was, and how much of their time the hypervisor took.

Why the benchmarks need it: on a virtual machine the host may run another guest on "our"
core; Linux counts that as steal. A daemon pinned to a core that lost a fifth of its time
lags and drops audio through no fault of its own (issue 18: 16 listening calls dropped
hundreds of frames in runs whose core lost 10-35 % of its time to steal, a few or none
in runs without),
and the callers, simulated on the other cores, may be saturated themselves. A level's
figures are read with both numbers beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# a line's fields after its name: user nice system idle iowait irq softirq steal guest ...
_IDLE, _IOWAIT, _STEAL = 3, 4, 7


@dataclass(frozen=True)
class Ticks:
    total: int = 0
    idle: int = 0
    steal: int = 0


def read_ticks(cores: set[int] | None) -> Ticks | None:
    """The summed clock ticks of `cores` (all cores when None); None where /proc/stat
    cannot be read (not Linux)."""
    try:
        lines = PROC_STAT.read_text().splitlines()
    except OSError:
        return None
    total = idle = steal = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu"):
            continue
        wanted = name == "cpu" if cores is None else name[3:].isdigit() and int(name[3:]) in cores
        if wanted and len(fields) > _STEAL:
            values = [int(f) for f in fields[:8]]  # guest time is already in user
            total += sum(values)
            idle += values[_IDLE] + values[_IOWAIT]
            steal += values[_STEAL]
    return Ticks(total, idle, steal)


def shares(after: Ticks | None, before: Ticks | None) -> tuple[float, float]:
    """(busy, steal) as shares of the cores' time between two readings (busy counts
    steal: the core was not idle, only not ours); NaN where unknown."""
    if after is None or before is None or after.total <= before.total:
        return float("nan"), float("nan")
    total = after.total - before.total
    busy = total - (after.idle - before.idle)
    return round(busy / total, 3), round((after.steal - before.steal) / total, 3)
