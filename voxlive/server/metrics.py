"""Prometheus metrics at GET /metrics, fed from the calls' event streams.

Plain text exposition format, no client library: a few histograms and counters.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS_S = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
BARGE_IN_BUCKETS_S = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0)


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cumulative = 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            cumulative += n
            label = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{self.name}_bucket{{le="{label}"}} {cumulative}')
        lines += [f"{self.name}_sum {self.total:.6f}", f"{self.name}_count {self.count}"]
        return lines


class Metrics:
    def __init__(self) -> None:
        self.voice_to_voice = Histogram(
            "voxlive_voice_to_voice_seconds",
            "From the user's last voiced audio to the first reply frame sent.",
            LATENCY_BUCKETS_S)
        self.barge_in = Histogram(
            "voxlive_barge_in_seconds",
            "From the onset of speech over the reply to the reply's last frame sent.",
            BARGE_IN_BUCKETS_S)
        self.counters: dict[str, int] = {"calls_total": 0, "turns_total": 0,
                                         "interruptions_total": 0, "errors_total": 0}

    def call_started(self) -> None:
        self.counters["calls_total"] += 1

    def observe_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "turn_latency" and event["voice_to_voice_ms"] == event["voice_to_voice_ms"]:
            self.voice_to_voice.observe(event["voice_to_voice_ms"] / 1000)
            self.counters["turns_total"] += 1
        elif kind == "barge_in":
            self.barge_in.observe(event["onset_to_silence_ms"] / 1000)
        elif kind == "interrupted":
            self.counters["interruptions_total"] += 1
        elif kind == "error":
            self.counters["errors_total"] += 1

    def render(self, active_calls: int, gauges: dict[str, float] | None = None) -> str:
        """`gauges`: the process's vitals (event-loop lag, threads, fds, connections)."""
        lines = [*self.voice_to_voice.render(), *self.barge_in.render()]
        for name, value in self.counters.items():
            lines += [f"# TYPE voxlive_{name} counter", f"voxlive_{name} {value}"]
        lines += ["# TYPE voxlive_active_calls gauge", f"voxlive_active_calls {active_calls}"]
        for name, value in (gauges or {}).items():
            lines += [f"# TYPE voxlive_{name} gauge", f"voxlive_{name} {value:g}"]
        return "\n".join(lines) + "\n"
