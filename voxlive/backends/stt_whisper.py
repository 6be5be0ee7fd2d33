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

import numpy as np

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import Transcript
from voxlive.config import FasterWhisperStt, resolve_model

LOOPING_RATIO = 2.4
"""gzip compression ratio above which a transcript repeats itself (faster-whisper's rule)."""
TOKENS_PER_S = 8
"""Text tokens that speech can hold, at most, per second: a looping decoder stops there."""


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
        return self.recognise_many([audio])[0]

    def recognise_many(self, audios: list[np.ndarray]) -> list[Transcript]:
        """Several utterances (from different calls) at once: those that fit the short
        window are encoded and decoded as one batch (voxlive/sched/stt.py gathers them)."""
        audios = [audio.astype(np.float32, copy=False) for audio in audios]
        results: list[Transcript | None] = [None] * len(audios)
        with self._lock:
            short = self._short
            fits = [i for i, audio in enumerate(audios) if short is not None and short.fits(audio)]
            if short is not None and fits:
                # The default 0.86: the France errors scored 0.80-0.83, over WebRTC too;
                # most right transcripts 0.86-0.97.
                least = self.config.short_window_min_confidence
                for i, got in zip(fits, short.recognise_many([audios[i] for i in fits]),
                                  strict=True):
                    if got is not None and got.confidence >= least:
                        results[i] = got
            return [got if got is not None else self._full_window(audio)
                    for got, audio in zip(results, audios, strict=True)]

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
        if not segments:
            return Transcript(text, 0.0)
        # Whisper answers a cough or an "mm-hm" with invented words at a low
        # log-probability: the confidence tells them from words that were said.
        weights = [max(1, len(s.text.strip())) for s in segments]
        mean = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True))
        return Transcript(text, float(np.exp(mean / sum(weights))))

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
        return self.recognise_many([audio])[0]

    def recognise_many(self, audios: list[np.ndarray]) -> list[Transcript | None]:
        """One batched pass over several utterances (each fits the window)."""
        import ctranslate2

        mels = []
        for audio in audios:
            padded = np.zeros(self.window, np.float32)
            padded[: audio.size] = audio
            mels.append(self.features(padded, padding=0)[:, : self.window // 160])
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(mels)))
        caps = [len(self.prompt) + int(audio.size / MODEL_RATE * TOKENS_PER_S) + 8
                for audio in audios]
        results = self.model.model.generate(
            features, [self.prompt] * len(audios), beam_size=self.beam_size,
            max_length=max(caps), return_scores=True, suppress_blank=True,
            suppress_tokens=self.suppress,
        )
        return [self._transcript(result, cap) for result, cap in zip(results, caps, strict=True)]

    def _transcript(self, result: object, max_length: int) -> Transcript | None:
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
