"""A fast first hearing, and the careful one only for the turns it is unsure of.

Why: the careful hearing of the embedded profile (tiny.en, beam 5, SmolLM2 choosing among
the five best, the multilingual fallback) is the longest wait between the user's last
word and the reply, and most of it is Whisper's fixed window. Moonshine base
(stt_moonshine.py) reads only the utterance, greedily, in about a third of the time; on
human speech it makes fewer errors than the careful hearing, on espeak-ng's voices and in
noise more, and where it errs it is mostly unsure. So its transcript stands when its
confidence (Whisper's measure, exp mean log-probability) is at least `sure_above`, and
any other turn is heard again by the careful STT, whose transcript then stands. Measured
on the hearing bench's clips (README: Hearing): at 0.85 as few or fewer word errors than
the careful hearing alone, clean and in noise, synthetic and human, in 70-87 % of its
time (108 % on espeak-ng speech in noise, where Whisper hears 3 clips in 4 again).

The careful hearing is not always the better one: tiny.en is sometimes far less sure
than Moonshine was, and then usually wrong ("Who wrote Romeo and Juliet?" over Opus:
Moonshine 0.70 and right, tiny.en 0.39 "Who wrote the old one to the end?"). So an unsure
first hearing still stands when it is surer than the careful one by `surer_by` (0.2):
measured on the hearing bench's clips and the quality set's questions over Opus (README:
Hearing), word errors fell on four sets and rose on none; at 0.1 they rose on the human
recordings, at 0.3 in noise.

A turn in another language comes out of Moonshine (English only) with no words or unsure
ones, so it still reaches the careful STT and its multilingual fallback; so do hums and
noises (no words), as before. A careful transcript in another language always stands:
Moonshine's English words for it cannot be right, however sure. Once a call speaks
another language (call_language.py), its turns go to the careful STT alone.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from voxlive.backends.base import Transcript
from voxlive.backends.stt_moonshine import MoonshineSTT, MoonshineStt
from voxlive.serving.stt_batch import recognise_batch

log = logging.getLogger(__name__)


class FirstPassSTT:
    """`fast` hears every turn; `careful` (any STT) the ones `fast` is unsure of."""

    def __init__(self, fast: Any, careful: Any, sure_above: float,
                 surer_by: float | None = None):
        self.fast = fast
        self.careful = careful
        self.sure_above = sure_above
        self.surer_by = surer_by
        surer = "" if surer_by is None else f" or surer by {surer_by:g}"
        self.description = (f"{fast.description}, when sure (>= {sure_above:g}){surer}; "
                            f"else {careful.description}")
        self.passed = self.handed_on = 0  # turns each hearing decided, for benchmarks

    def sure(self, heard: Transcript) -> bool:
        return bool(heard.text.strip()) and heard.confidence >= self.sure_above

    def settle(self, first: Transcript, careful: Transcript) -> Transcript:
        """The transcript that stands once the careful STT has heard an unsure turn."""
        if (self.surer_by is not None and first.text.strip() and careful.language is None
                and first.confidence >= careful.confidence + self.surer_by):
            log.debug("first pass %.2f stands against the careful %.2f (%r)",
                      first.confidence, careful.confidence, careful.text)
            return first
        return careful

    def first_hearing(self, audio: np.ndarray) -> Transcript:
        """The fast STT's transcript; a failure of it is no transcript (the careful STT
        hears the turn), logged: a broken first pass must not cost the caller a turn."""
        try:
            return self.fast.recognise(audio)
        except Exception:
            log.exception("the first-pass STT failed; the careful one hears this turn")
            return Transcript("", 0.0)

    def recognise(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        """`language`: the one the call speaks, if not English (call_language.py): the
        careful STT, whose multilingual fallback told it, hears the turn alone: Moonshine
        knows English only."""
        if language is not None:
            self.handed_on += 1
            return self.careful.recognise(audio, language=language)
        heard = self.first_hearing(audio)
        if self.sure(heard):
            self.passed += 1
            return heard
        self.handed_on += 1
        log.debug("first pass unsure (%.2f): %r", heard.confidence, heard.text)
        return self.settle(heard, self.careful.recognise(audio))

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text

    def recognise_many(self, audios: list[np.ndarray]) -> list[Transcript]:
        """Several calls' turns (sched/stt.py): the unsure ones go to the careful STT as
        one batch (serving/stt_batch.py), so batching still saves its passes."""
        heard = [self.first_hearing(audio) for audio in audios]
        unsure = [i for i, h in enumerate(heard) if not self.sure(h)]
        self.passed += len(audios) - len(unsure)
        self.handed_on += len(unsure)
        for i, again in zip(unsure, recognise_batch(self.careful, [audios[i] for i in unsure]),
                            strict=True):
            heard[i] = self.settle(heard[i], again)
        return heard

    @property
    def languages(self) -> list[str]:
        """The languages besides English that a call may speak (call_language.py)."""
        return list(getattr(self.careful, "languages", ()))

    # What benchmarks reach for on a faster-whisper backend (bench turns): the careful one.
    @property
    def model(self) -> object:
        return self.careful.model

    def recognise_full_window(self, audio: np.ndarray) -> Transcript:
        return self.careful.recognise_full_window(audio)


def with_first_pass(careful: Any, first: Any) -> FirstPassSTT:
    """Moonshine in front of `careful`, as `first` (stt_whisper.FirstPass) says."""
    fast = MoonshineSTT(MoonshineStt(backend="moonshine", model=first.model,
                                     cpu_threads=first.cpu_threads))
    return FirstPassSTT(fast, careful, first.sure_above, first.surer_by)
