"""Callers who speak another language: an English Whisper first, a multilingual one for
what it cannot hear.

Why two models: the embedded profile hears English with tiny.en (English only, fast, and
on espeak-ng and real English speech more accurate than the multilingual `base` that pip
ships, which is also 3-6x slower). tiny.en cannot hear German, Spanish or French: it
writes English-sounding words, at a low confidence. So a transcript it is unsure of
(confidence under `below_confidence`) is handed to the multilingual model, which first
says which language the audio is in (one encoder pass on the short window, and Whisper's
language tokens); if that is another language, its transcript in that language is kept,
else tiny.en's. English turns that tiny.en hears clearly, the usual case, cost nothing
more; a foreign or doubtful turn pays for one more short-window pass of the second model.
"""

from __future__ import annotations

import logging

import numpy as np

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import Transcript
from voxlive.backends.stt_whisper import FasterWhisperSTT, _ShortWindow
from voxlive.config import FasterWhisperStt

log = logging.getLogger(__name__)


class LanguageFallbackSTT:
    """`config.other_languages` names the multilingual model and the rule (schema.py)."""

    def __init__(self, config: FasterWhisperStt):
        other = config.other_languages
        if other is None:
            raise ValueError("LanguageFallbackSTT needs stt.other_languages")
        self.config = config
        self.primary = FasterWhisperSTT(config.model_copy(update={"other_languages": None}))
        self.other = FasterWhisperSTT(config.model_copy(update={
            "model": other.model, "language": None, "beam_size": other.beam_size,
            "other_languages": None}))
        if not self.other.model.model.is_multilingual:
            raise ValueError(f"stt.other_languages.model {other.model} is English only: "
                             "it cannot tell or hear other languages")
        self.below = other.below_confidence
        self.min_probability = other.min_probability
        self.languages = set(other.languages or ())
        self._windows: dict[str, _ShortWindow] = {}
        self.description = (f"{self.primary.description}; other languages: "
                            f"{self.other.description}")
        self.last_language = config.language or "en"

    def recognise(self, audio: np.ndarray) -> Transcript:
        first = self.primary.recognise(audio)
        self.last_language = self.config.language or "en"
        if first.confidence >= self.below or not audio.size:
            return first
        language, probability = self.detect(audio)
        if (language == self.last_language or probability < self.min_probability
                or (self.languages and language not in self.languages)):
            return first
        heard = self.in_language(audio, language)
        log.info("heard as %s (p=%.2f): %r (English model: %r, %.2f)", language,
                 probability, heard.text, first.text, first.confidence)
        self.last_language = language
        return heard

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text

    def detect(self, audio: np.ndarray) -> tuple[str, float]:
        """The most likely language of `audio` and its probability, from one encoder pass
        on the short window (30 s for longer audio)."""
        import ctranslate2

        model = self.other.model
        window = int(round((self.config.short_window_s or 30) * MODEL_RATE))
        if audio.size > window - MODEL_RATE:
            window = 30 * MODEL_RATE
        padded = np.zeros(window, np.float32)
        clip = audio[:window]
        padded[: clip.size] = clip
        extractor = self._window("en").features
        mel = extractor(padded, padding=0)[:, : window // 160]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        with self.other._lock:
            (ranked,) = model.model.detect_language(features)
        token, probability = ranked[0]
        return token[2:-2], float(probability)

    def in_language(self, audio: np.ndarray, language: str) -> Transcript:
        """The multilingual model's transcript in `language`: the short window when the
        audio fits it and the result is sure enough, else Whisper's 30 s window."""
        window = self._window(language)
        with self.other._lock:
            if window.fits(audio):
                short = window.recognise(audio)
                if short is not None and short.confidence >= \
                        self.config.short_window_min_confidence:
                    return short
        fixed = self.other.config.model_copy(update={"language": language})
        with self.other._lock:
            saved, self.other.config = self.other.config, fixed
            try:
                return self.other._full_window(audio)
            finally:
                self.other.config = saved

    def _window(self, language: str) -> _ShortWindow:
        if language not in self._windows:
            config = self.other.config.model_copy(update={
                "language": language, "short_window_s": self.config.short_window_s or 10.0})
            self._windows[language] = _ShortWindow(self.other.model, config)
        return self._windows[language]
