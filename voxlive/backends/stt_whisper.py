"""faster-whisper speech-to-text (CTranslate2): tiny.en on a CPU, large-v3-turbo on a GPU."""

from __future__ import annotations

import threading

import numpy as np

from voxlive.backends.base import Transcript
from voxlive.config import FasterWhisperStt, resolve_model


class FasterWhisperSTT:
    def __init__(self, config: FasterWhisperStt):
        from faster_whisper import WhisperModel

        self.config = config
        model = resolve_model(config.model)
        # A hub name (e.g. large-v3-turbo) is downloaded by faster-whisper on first use.
        self.model = WhisperModel(
            model,
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
        )
        self.description = f"faster-whisper {config.model} ({config.device}, {config.compute_type})"
        # One model serves every call; CTranslate2 runs one transcription at a time per
        # worker anyway, and the lock keeps concurrent calls from oversubscribing the CPU.
        self._lock = threading.Lock()

    def recognise(self, audio: np.ndarray) -> Transcript:
        with self._lock:
            segments, _info = self.model.transcribe(
                audio.astype(np.float32, copy=False),
                language=self.config.language,
                beam_size=self.config.beam_size,
                vad_filter=False,
                without_timestamps=True,
                condition_on_previous_text=False,
            )
            segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        if not segments:
            return Transcript(text, 0.0)
        # Whisper answers a cough or an "mm-hm" with invented words at a low
        # log-probability: the confidence tells them from words that were said.
        weights = [max(1, len(s.text.strip())) for s in segments]
        mean = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True))
        return Transcript(text, float(np.exp(mean / sum(weights))))

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text
