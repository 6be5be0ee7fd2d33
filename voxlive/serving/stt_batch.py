"""Several utterances transcribed in one pass of Whisper: the batch of the STT deployment.

faster-whisper transcribes one audio at a time; CTranslate2's `generate` takes a batch.
Utterances that fit the backend's short window (voxlive/backends/stt_whisper.py: up to
`short_window_s` less 1 s) are padded to that window, stacked, and decoded together in
one `generate` call: on a GPU a batch of N costs little more than one, on a CPU it saves
the per-call overhead. Each result is judged as the backend judges its own (looping or
unsure: redone alone, on the full window), and any utterance that does not fit goes
through the backend's own `recognise`: the transcripts are the backend's, only batched.
So the batch also does what the backend does around the pass: its `prepare` (noise
suppression, `stt.denoise`) first, and the short window's n-best rescoring
(`stt.rescore`) on each result.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import SpeechToText, Transcript
from voxlive.backends.stt_whisper import LOOPING_RATIO, TOKENS_PER_S

FULL_WINDOW = 30 * MODEL_RATE
LEAST_FULL_WINDOW_LOGPROB = -1.0  # faster-whisper's log_prob_threshold: below, it retries


def recognise_batch(stt: SpeechToText, audios: list[np.ndarray]) -> list[Transcript]:
    """One Transcript per audio, in order. A backend with its own batched path
    (`recognise_many`, issue 18's in-daemon batching) is used as it is."""
    many = getattr(stt, "recognise_many", None)
    if callable(many):
        return list(many(audios))
    short = getattr(stt, "_short", None)  # FasterWhisperSTT's short window, if enabled
    lock = getattr(stt, "_lock", None)
    results: list[Transcript | None] = [None] * len(audios)
    recognise = stt.recognise
    if short is not None and lock is not None and len(audios) > 1:
        audios = [stt.prepare(audio) for audio in audios]  # type: ignore[attr-defined]
        recognise = stt.recognise_prepared  # type: ignore[attr-defined]
        least = stt.config.short_window_min_confidence  # type: ignore[attr-defined]
        with lock:
            batch = [i for i, audio in enumerate(audios) if short.fits(audio)]
            _keep(results, batch, _generate(short, [audios[i] for i in batch], short.window),
                  least)
            batch = [i for i, audio in enumerate(audios)
                     if results[i] is None and 0 < audio.size <= FULL_WINDOW]
            _keep(results, batch, _generate(short, [audios[i] for i in batch], FULL_WINDOW),
                  float(np.exp(LEAST_FULL_WINDOW_LOGPROB)))
    return [result if result is not None else recognise(audio.astype(np.float32))
            for result, audio in zip(results, audios, strict=True)]


def _keep(results: list[Transcript | None], batch: list[int],
          decoded: list[Transcript | None], least: float) -> None:
    for i, transcript in zip(batch, decoded, strict=True):
        if transcript is not None and (transcript.confidence >= least or not transcript.text):
            results[i] = transcript


def _mel(short: Any, audio: np.ndarray, window: int) -> np.ndarray:
    """The log-mel input as each pass makes it: the short window pads the audio with
    silence (stt_whisper._ShortWindow); faster-whisper's 30 s pass pads the mel itself
    with zeros (pad_or_trim), which Whisper hears differently: copied, not improved."""
    if window != FULL_WINDOW:
        padded = np.zeros(window, np.float32)
        padded[: audio.size] = audio
        return short.features(padded, padding=0)[:, : window // 160]
    from faster_whisper.audio import pad_or_trim

    return pad_or_trim(short.model.feature_extractor(audio), window // 160)


def _generate(short: Any, audios: list[np.ndarray], window: int) -> list[Transcript | None]:
    """The short window's pass (stt_whisper._ShortWindow.recognise), on a window of
    `window` samples, for a batch (None: looping, the backend decides)."""
    import ctranslate2

    if not audios:
        return []
    mels = [_mel(short, audio, window) for audio in audios]
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(mels)))
    longest = max(audio.size for audio in audios)
    max_length = len(short.prompt) + int(longest / MODEL_RATE * TOKENS_PER_S) + 8
    judged = window != FULL_WINDOW and short.beam_size == 1  # the backend's doubt rule
    # The short window's rescoring, as the backend's own pass does it (its 30 s pass,
    # faster-whisper's, keeps Whisper's best).
    rescored = window != FULL_WINDOW and short.rescorer is not None
    results = short.model.model.generate(
        features, [short.prompt] * len(audios), beam_size=short.beam_size,
        max_length=max_length, return_scores=True, return_logits_vocab=judged,
        suppress_blank=True, suppress_tokens=short.suppress,
        num_hypotheses=short.hypotheses if rescored else 1,
    )
    out: list[Transcript | None] = []
    for audio, result in zip(audios, results, strict=True):
        tokens = result.sequences_ids[0]
        # The confidence is the best hypothesis's, the words the rescorer's pick.
        best_tokens = len(tokens)
        if rescored:
            tokens = short._rescored(result)
        text = short.tokenizer.decode(tokens).strip()
        own_cap = len(short.prompt) + int(audio.size / MODEL_RATE * TOKENS_PER_S) + 8
        data = text.encode()
        if not text:
            out.append(Transcript("", 0.0))
        elif (len(short.prompt) + len(tokens) >= own_cap - 1
              or len(data) / len(zlib.compress(data)) > LOOPING_RATIO):
            out.append(None)  # loops: the full window decides
        else:
            avg_logprob = result.scores[0] * best_tokens / (best_tokens + 1)
            transcript = Transcript(text, float(np.exp(avg_logprob)))
            words = short._word_probabilities(tokens, result.logits[0]) if judged else []
            # Doubtful words (stt_whisper._ShortWindow.doubtful): the full window decides.
            out.append(None if judged and short.doubtful(transcript, words) else transcript)
    return out
