"""Callers who speak another language: an English Whisper first, a multilingual one for
what it cannot hear.

Why two models: the embedded profile hears English with tiny.en (English only, fast, and
on espeak-ng and real English speech more accurate than the multilingual `base` that pip
ships, which is also 3-6x slower). tiny.en cannot hear German, Spanish or French: it
writes English-sounding words at a low confidence (0.32-0.45 on the quality set's de/es/fr
questions, against 0.47-0.91 for its English ones). So a transcript it is unsure of
(under `below_confidence`) is heard again by the multilingual model in each of the
profile's other `languages`, from one encoder pass on the short window; the most
confident of those transcripts replaces tiny.en's when it is surer than tiny.en was (by
`margin`) and than `min_confidence` (base's transcripts of the wrong language, or of
silence, score 0.2-0.45; its right ones 0.50-0.73 on the quality set). A turn with no
words stays so.

Why the margin, and the same-words rule: English that tiny.en is unsure of is often heard
by base, in another language's frame, as the same English words, a little surer: on the
hearing bench's clips (36 espeak-ng, 80 human, clean and in noise) and the quality set's
turns (clean and Opus-coded) five English turns went to another language, every one by a
margin of 0.04-0.10 or with the English words written again ("Set a timer for 10
minutes." as German at 0.52, "extensión" as Spanish against tiny.en's "extension."),
and the LLM would have answered an English speaker in German. The right switches won by
0.16-0.39, and their words have nothing in common with tiny.en's guess ("Okay, let's
copy, copy" against "Quel est la capitale de l'Italie ?"). So the other language must be
surer by `margin` (0.1), and a transcript that mostly repeats tiny.en's words (accents
aside) is English.

A call that speaks another language (call_language.py) has every turn heard in it,
whatever tiny.en made of it, and that language's transcript stands unless another, English
included, is surer by the same margin: tiny.en writes short answers as English words
("Oui." as "We...", "Gracias." as "Yes."), and a prompt of one voice through Opus is
heard in its language far more often so (README: "Callers of other languages").

Why not Whisper's language detection: on espeak-ng's German and French voices, base
detected Thai (p 0.85-0.92) for three of six questions and for one English question,
while forcing the right language gave the right words ("Quel est la capitale de
l'Italie ?"); a few languages named in the profile are a smaller, surer choice.

English turns that tiny.en hears clearly, the usual case, cost nothing more; an unsure
turn pays for one short-window encoder pass of base and one decoding per language.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import replace

import numpy as np

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import Transcript
from voxlive.backends.call_language import plain_words
from voxlive.backends.stt_whisper import LOOPING_RATIO, TOKENS_PER_S, FasterWhisperSTT
from voxlive.config import FasterWhisperStt

log = logging.getLogger(__name__)


class LanguageFallbackSTT:
    """`config.other_languages` names the multilingual model, its languages and the rule
    (config/schema.py: OtherLanguages)."""

    def __init__(self, config: FasterWhisperStt):
        other = config.other_languages
        if other is None or not other.languages:
            raise ValueError("stt.other_languages needs a model and at least one language")
        self.config = config
        self.primary = FasterWhisperSTT(config.model_copy(update={"other_languages": None}))
        self.other = FasterWhisperSTT(config.model_copy(update={
            "model": other.model, "language": other.languages[0],
            "beam_size": other.beam_size, "short_window_s": None, "other_languages": None,
            "rescore": None}))  # base decodes its own window: nothing to rescore
        if not self.other.model.model.is_multilingual:
            raise ValueError(f"stt.other_languages.model {other.model} is English only: "
                             "it cannot hear other languages")
        self.below = other.below_confidence
        self.least = other.min_confidence
        self.margin = other.margin
        self.languages = list(other.languages)
        self.window = int(round((config.short_window_s or 30.0) * MODEL_RATE))
        self._decoder = _Decoder(self.other.model, other.beam_size)
        self.description = (f"{self.primary.description}; {', '.join(self.languages)}: "
                            f"{self.other.description}")
        self.last_language = config.language or "en"

    def recognise(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        """`language`: the one the call speaks (call_language.py), if not English: the
        turn is then heard in the other languages whatever tiny.en made of it."""
        audio = self.primary.prepare(audio)  # denoised once, for both models
        first = self.primary.recognise_prepared(audio)
        call = language if language in self.languages else None
        self.last_language = self.config.language or "en"
        if call is None and (first.confidence >= self.below or not first.text.strip()):
            return first  # sure, or no words at all (silence, a cough): nothing to redo
        heard = self.in_other_languages(audio)
        chosen = other_language(first, heard, self.least, self.margin, call)
        if chosen is None:
            return first
        best = heard[chosen]
        log.info("heard as %s (%.2f): %r; English model: %r (%.2f)", chosen,
                 best.confidence, best.text, first.text, first.confidence)
        self.last_language = chosen
        return replace(best, language=chosen)

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text

    # What benchmarks reach for on a faster-whisper backend (bench turns): the English one.
    @property
    def model(self) -> object:
        return self.primary.model

    def recognise_full_window(self, audio: np.ndarray) -> Transcript:
        return self.primary.recognise_full_window(audio)

    def in_other_languages(self, audio: np.ndarray) -> dict[str, Transcript]:
        """The multilingual model's transcript in each language (a transcript that loops
        is left out), from one encoder pass."""
        window = self.window if audio.size <= self.window - MODEL_RATE else 30 * MODEL_RATE
        with self.other._lock:
            encoded = self._decoder.encode(audio[:window], window)
            out = {}
            for language in self.languages:
                heard = self._decoder.decode(encoded, language, audio[:window].size)
                if heard is not None:
                    out[language] = heard
        return out


def other_language(english: Transcript, heard: dict[str, Transcript], least: float,
                   margin: float, call: str | None = None) -> str | None:
    """The language whose transcript should replace the English model's, or None.
    `call`: the language the call speaks, if not English; its transcript stands unless
    another (English included) is surer by `margin`."""
    kept = heard.get(call) if call is not None else None
    if kept is not None and kept.confidence >= least and all(
            kept.confidence + margin >= other.confidence
            for other in [english, *heard.values()] if other.text.strip()):
        return call
    if not heard:
        return None
    language, best = max(heard.items(), key=lambda kv: kv[1].confidence)
    if best.confidence < max(english.confidence + margin, least):
        return None
    if shared_words(best.text, english.text) >= SAME_WORDS:
        return None  # English words, written down again in another language's frame
    return language


SAME_WORDS = 0.5
"""Share of a transcript's words also in the English model's transcript at which both
heard the same English words."""


def shared_words(text: str, other: str) -> float:
    """The share of `text`'s words (case and accents aside) that `other` also has."""
    words, others = plain_words(text), set(plain_words(other))
    return sum(w in others for w in words) / len(words) if words else 0.0


class _Decoder:
    """Whisper's decoder in a given language over an encoded window (as stt_whisper's
    short window does it, with the language token in the prompt)."""

    def __init__(self, model: object, beam_size: int):
        from faster_whisper.feature_extractor import FeatureExtractor

        self.model = model
        self.beam_size = beam_size
        self.features = FeatureExtractor(
            feature_size=model.feature_extractor.mel_filters.shape[0])  # type: ignore[attr-defined]
        self._tokenizers: dict[str, object] = {}

    def encode(self, audio: np.ndarray, window: int) -> object:
        import ctranslate2

        padded = np.zeros(window, np.float32)
        padded[: audio.size] = audio
        mel = self.features(padded, padding=0)[:, : window // 160]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        return self.model.model.encode(features, to_cpu=False)  # type: ignore[attr-defined]

    def tokenizer(self, language: str) -> object:
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self.model.hf_tokenizer, True, task="transcribe",  # type: ignore[attr-defined]
                language=language)
        return self._tokenizers[language]

    def decode(self, encoded: object, language: str, samples: int) -> Transcript | None:
        tokenizer = self.tokenizer(language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]  # type: ignore[attr-defined]
        max_length = len(prompt) + int(samples / MODEL_RATE * TOKENS_PER_S) + 8
        (result,) = self.model.model.generate(  # type: ignore[attr-defined]
            encoded, [prompt], beam_size=self.beam_size, max_length=max_length,
            return_scores=True, suppress_blank=True,
            suppress_tokens=[-1, *tokenizer.non_speech_tokens])  # type: ignore[attr-defined]
        tokens = result.sequences_ids[0]
        text = tokenizer.decode(tokens).strip()  # type: ignore[attr-defined]
        if not text:
            return None
        data = text.encode()
        if (len(prompt) + len(tokens) >= max_length - 1
                or len(data) / len(zlib.compress(data)) > LOOPING_RATIO):
            return None
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        return Transcript(text, float(np.exp(avg_logprob)))
