"""The model work of `voxlive serve-models`, in batches, without any web framework.

Each engine wraps the backend a models.yaml profile names (loaded by voxlive's own
loader, so a model served here is exactly the one a daemon would load) and takes a
list of requests at a time: the runtime (Ray Serve's @serve.batch, or local_app's
MicroBatcher) gathers concurrent requests, from any number of daemons, into that list.
Blocking code, run in threads by the runtimes. Each engine counts what it did
(`stats()`), so batching and cancellation are observed, not assumed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from voxlive.audio.resample import Resampler, to_int16
from voxlive.backends.base import Transcript
from voxlive.sched.fair import StageStats
from voxlive.serving.stt_batch import recognise_batch

CHUNK_S = 0.1
"""Audio per streamed speech chunk: a closed stream is seen within about this long."""
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def load_engine(stage: str, profile: Any, speech_rate: int = 24_000) -> Any:
    """The engine of one stage, its backend loaded from the profile (once per process)."""
    from voxlive.backends.loader import load_stage

    if getattr(profile, stage, None) is None:
        raise ValueError(f"the profile has no {stage} stage to serve")
    backend, _seconds = load_stage(stage, profile)
    engines = {"stt": SttEngine, "emotion": EmotionEngine, "vision": VisionEngine}
    if stage == "tts":
        return TtsEngine(backend, speech_rate)
    return engines[stage](backend)


class SttEngine:
    def __init__(self, backend: Any):
        self.backend = backend
        self.description = backend.description
        self.counts = StageStats()

    def recognise(self, audios: list[np.ndarray]) -> list[Transcript]:
        self.counts.batch(len(audios))
        return recognise_batch(self.backend, audios)

    def stats(self) -> dict[str, Any]:
        return self.counts.summary()


class EmotionEngine:
    """Each request is one turn of an unknown speaker (the server keeps no per-call
    state): the prosody backend then scores against its priors alone."""

    def __init__(self, backend: Any):
        self.backend = backend
        self.description = backend.description
        self.counts = StageStats()

    def analyse(self, audios: list[np.ndarray]) -> list[dict[str, Any]]:
        self.counts.batch(len(audios))
        return [asdict(self.backend.analyse(audio, self.backend.new_speaker()))
                for audio in audios]

    def stats(self) -> dict[str, Any]:
        return self.counts.summary()


class VisionEngine:
    def __init__(self, backend: Any):
        self.backend = backend
        self.description = backend.description
        self.counts = StageStats()

    def describe(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        self.counts.batch(len(images))
        out = []
        for image in images:
            scene = self.backend.describe(image)
            out.append({"caption": scene.caption, "labels": scene.labels,
                        "backend": scene.backend})
        return out

    def stats(self) -> dict[str, Any]:
        return self.counts.summary()


@dataclass
class StreamStats:
    started: int = 0
    finished: int = 0
    stopped_early: int = 0  # the client closed the stream: synthesis stopped
    failed: int = 0
    sentences: int = 0
    active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {name: getattr(self, name) for name in
                    ("started", "finished", "stopped_early", "failed", "sentences", "active")}


class TtsEngine:
    """Speech as 16-bit mono pcm at `rate`, streamed in CHUNK_S pieces, a sentence at a
    time: a stop (the client closed the stream) ends it before the next sentence, or at
    once inside a backend that reads the stop flag (Parler)."""

    def __init__(self, backend: Any, rate: int = 24_000):
        self.backend = backend
        self.rate = rate
        self.description = backend.description
        self.counts = StreamStats()

    def speak(self, text: str, style: str = "default",
              stop: threading.Event | None = None) -> Iterator[bytes]:
        stop = stop or threading.Event()
        chunk_bytes = int(self.rate * CHUNK_S) * 2
        self._count(started=1, active=1)
        ended = "stopped_early"
        try:
            for sentence in (s for s in SENTENCE_END.split(text.strip()) if s):
                resampler, pending = Resampler(self.rate), b""
                for audio in self.backend.synthesize(sentence, style, stop):
                    pending += to_int16(resampler.process(audio, self.backend.sample_rate)
                                        ).tobytes()
                    while len(pending) >= chunk_bytes and not stop.is_set():
                        yield pending[:chunk_bytes]
                        pending = pending[chunk_bytes:]
                    if stop.is_set():
                        return
                pending += to_int16(resampler.flush()).tobytes()
                self._count(sentences=1)
                if pending and not stop.is_set():
                    yield pending
                if stop.is_set():
                    return
            ended = "finished"
        except GeneratorExit:
            raise  # closed by the consumer: stopped early
        except Exception:
            ended = "failed"
            raise
        finally:
            self._count(active=-1, **{ended: 1})

    synthesize = speak
    """The TextToSpeech shape (bytes, not float chunks), so tts_stream.speech_chunks runs it
    in a thread with its stop flag."""

    def _count(self, **deltas: int) -> None:
        with self.counts.lock:
            for name, delta in deltas.items():
                setattr(self.counts, name, getattr(self.counts, name) + delta)

    def stats(self) -> dict[str, Any]:
        """The streams, and where the backend batches sentences (Parler), its batches."""
        summary = self.counts.summary()
        batches = getattr(self.backend, "batch_stats", None)
        if batches is not None:
            summary["batches"] = batches.summary()
        return summary
