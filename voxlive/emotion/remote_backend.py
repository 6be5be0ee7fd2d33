"""Emotion on `voxlive serve-models` (POST /v1/emotion): the server's recogniser, shared
by many daemons and batched there. The server keeps no per-call state, so a backend that
normalises per caller (prosody) scores each turn against its priors alone there; the
speechbrain classifier, a GPU model, is what this is for."""

from __future__ import annotations

import numpy as np

from voxlive.backends.registry import Backend
from voxlive.backends.stt_remote import encode_wav
from voxlive.emotion.base import Emotion, as_mono_float32
from voxlive.serving.client import ModelServerClient, RemoteModelServer


class RemoteEmotion:
    def __init__(self, config: RemoteModelServer):
        self.client = ModelServerClient("emotion", config.base_url, "emotion", config.api_key,
                                        config.timeout_s)
        self.description = f"remote emotion at {self.client.base_url}"

    def new_speaker(self) -> object:
        return None

    def analyse(self, audio: np.ndarray, speaker: object) -> Emotion:
        answer = self.client.post_file(encode_wav(as_mono_float32(audio)), "turn.wav",
                                       "audio/wav")
        arousal = answer.get("arousal")
        return Emotion(str(answer.get("label", "unknown")),
                       float(answer.get("confidence", 0.0)),
                       {str(k): float(v) for k, v in (answer.get("scores") or {}).items()},
                       f"{answer.get('backend', 'remote')} (remote)",
                       None if arousal is None else float(arousal))


BACKEND = Backend(stage="emotion", name="remote", config=RemoteModelServer,
                  factory=RemoteEmotion, model_field=None)
