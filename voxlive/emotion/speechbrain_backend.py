"""A trained speech emotion classifier through SpeechBrain (the gpu profile).

The default model, speechbrain/emotion-recognition-wav2vec2-IEMOCAP, is wav2vec2-base
fine-tuned on IEMOCAP's acted dialogues: four classes (neutral, angry, happy, sad),
about 75% accuracy on IEMOCAP's own test speakers and less on anyone else. It ships its
inference class in the model repository (custom_interface.py), so it is loaded the way
its model card says, with SpeechBrain's `foreign_class`; any model with the same
interface (a folder holding hyperparams.yaml, custom_interface.py and the checkpoints)
works too.

speechbrain needs torchaudio, and so a full torch build: it is imported when the backend
is built, so that importing this module costs nothing where it is not installed.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict
from voxlive.emotion.base import SAMPLE_RATE, Emotion, as_mono_float32, unknown

PYMODULE_FILE = "custom_interface.py"
CLASSNAME = "CustomEncoderWav2vec2Classifier"

IEMOCAP_LABELS = {"neu": "neutral", "ang": "angry", "hap": "happy", "sad": "sad"}
"""IEMOCAP's label codes as the model's label encoder spells them, in plain words."""

MIN_SPEECH_S = 0.25
"""Shorter turns (or all but silent ones) give "unknown": wav2vec2's convolutional front
end needs 400 samples for one frame, and a quarter second says nothing about emotion."""
SILENCE_RMS = 1e-4
"""-80 dBFS: a turn this quiet is digital silence, not speech."""


class SpeechBrainEmotion(Strict):
    backend: Literal["speechbrain"]
    model: str = "speechbrain/emotion-recognition-wav2vec2-IEMOCAP"
    device: str = "cpu"


class SpeechBrainConfig(Protocol):
    """What SpeechBrainEmotionBackend reads from its configuration."""

    model: str
    device: str


class SpeechBrainEmotionBackend:
    def __init__(self, config: SpeechBrainConfig):
        from speechbrain.inference.interfaces import foreign_class

        self.config = config
        source = resolve_model(config.model)  # a hub id, or a folder (`~` expanded)
        overrides = {}
        folder = Path(source)
        if folder.is_dir():
            # The hub's hyperparams.yaml points its checkpoints at the hub id
            # (`pretrained_path`); a downloaded copy should load its own files instead.
            hparams = (folder / "hyperparams.yaml").read_text(encoding="utf-8")
            if re.search(r"^pretrained_path:", hparams, flags=re.MULTILINE):
                overrides["pretrained_path"] = str(folder.resolve())
        # savedir=None: a hub id is fetched into (and read from) the Hugging Face cache, a
        # folder is read in place; nothing is written to the working directory.
        self.classifier = foreign_class(
            source=source,
            pymodule_file=PYMODULE_FILE,
            classname=CLASSNAME,
            savedir=None,
            overrides=overrides,
            run_opts={"device": config.device},
        )
        self.classifier.eval()
        encoder = self.classifier.hparams.label_encoder
        codes = [encoder.ind2lab[i] for i in sorted(encoder.ind2lab)]
        self.labels = [IEMOCAP_LABELS.get(code, code) for code in codes]
        self.description = f"speechbrain {config.model} ({config.device})"
        # One model serves every call; the lock keeps concurrent turns from
        # oversubscribing the CPU (or the GPU's memory).
        self._lock = threading.Lock()

    def new_speaker(self) -> None:
        return None  # the classifier judges each turn on its own

    def analyse(self, audio: np.ndarray, speaker: object) -> Emotion:
        import torch

        samples = as_mono_float32(audio)
        if samples.size < MIN_SPEECH_S * SAMPLE_RATE or _rms(samples) < SILENCE_RMS:
            return unknown(self.description)
        wavs = torch.from_numpy(samples).unsqueeze(0)
        with self._lock, torch.inference_mode():
            out_prob, _score, _index, _text = self.classifier.classify_batch(wavs)
        probabilities = _as_probabilities(out_prob.detach().float().cpu().numpy())
        scores = {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)}
        best = max(scores, key=scores.__getitem__)
        return Emotion(best, scores[best], scores, self.description, None)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def _as_probabilities(out_prob: np.ndarray) -> np.ndarray:
    """The first (only) row of classify_batch's output as probabilities summing to 1.

    The IEMOCAP model's yaml ends in speechbrain's Softmax, which gives probabilities;
    other models in the same interface end in a log-softmax or in raw logits. A softmax
    turns either of those into probabilities (softmax of log p is p), so it is applied
    unless the row already is a distribution."""
    row = np.asarray(out_prob, dtype=np.float64).reshape(-1, out_prob.shape[-1])[0]
    if np.all(row >= 0) and abs(row.sum() - 1.0) < 1e-3:
        return row / row.sum()
    exp = np.exp(row - row.max())
    return exp / exp.sum()


BACKEND = Backend(
    stage="emotion", name="speechbrain", config=SpeechBrainEmotion,
    factory=SpeechBrainEmotionBackend, package="speechbrain",
    install="pip install 'voxlive[emotion]'  (speechbrain, torchaudio)",
)
