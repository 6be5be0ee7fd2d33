"""Sharing the models between calls fairly (and in batches where the model allows).

`share(models)` wraps the loaded stages of one process: llama.cpp time-sliced between
replies (sched/llm.py), whisper batched across calls (sched/stt.py), the TTS voice taken
in deadline order (sched/tts.py), all ordered by sched/fair.py. Remote backends (vLLM,
a model server) are left alone: their servers batch, and voxlive keeps their requests
concurrent. VOXLIVE_FAIR_SCHED=0 turns it off (the benchmarks compare both).
"""

from __future__ import annotations

import os
from typing import Any

ENV_SWITCH = "VOXLIVE_FAIR_SCHED"


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "off", "no")


def share(models: Any) -> Any:
    """Wrap `models`' shared stages in place (once); returns `models`."""
    if not enabled():
        return models
    from voxlive.sched.llm import FairLlamaCpp
    from voxlive.sched.stt import BatchedSTT
    from voxlive.sched.tts import FairTTS

    if hasattr(models.llm, "llama") and not isinstance(models.llm, FairLlamaCpp):
        models.llm = FairLlamaCpp(models.llm)
    if hasattr(models.stt, "_short") and not isinstance(models.stt, BatchedSTT):
        models.stt = BatchedSTT(models.stt)
    if models.tts is not None and not isinstance(models.tts, FairTTS):
        models.tts = FairTTS(models.tts)
    return models


def gauges(models: Any) -> dict[str, float]:
    """The shared stages' counters for /metrics (empty when nothing is shared)."""
    out: dict[str, float] = {}
    for stage in ("stt", "llm", "tts"):
        stage_gauges = getattr(getattr(models, stage, None), "gauges", None)
        if callable(stage_gauges):
            out.update(stage_gauges())
    return out
