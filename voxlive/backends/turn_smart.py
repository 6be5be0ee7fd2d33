"""Smart Turn v3.2 (pipecat-ai, BSD-2-Clause): is the user's turn over, from the sound alone.

A Whisper-tiny-sized encoder with a classifier head, exported to ONNX. It reads the
last 8 s of the utterance at 16 kHz as an 80-bin Whisper log-mel (zero-padded at the
front, the waveform normalised to zero mean and unit variance first, as Whisper's
feature extractor does with `do_normalize`) and answers P(turn complete): a prosody
model, trained on people, that hears a falling or a hanging end of a phrase.

The model file ships inside the `pipecat-ai` wheel, installed with `--no-deps` and
found without importing pipecat (its import pulls a large dependency tree). The
features come from faster-whisper's numpy FeatureExtractor, already installed for STT.
"""

from __future__ import annotations

import numpy as np

from voxlive.audio.resample import MODEL_RATE

WINDOW_S = 8
"""Seconds of audio the model reads: the end of the utterance."""
FRAMES = WINDOW_S * MODEL_RATE // 160
"""Mel frames per input (hop 10 ms): 800."""


class SmartTurnModel:
    """One ONNX session shared by every call (onnxruntime sessions are thread-safe)."""

    def __init__(self, model_path: str, cpu_threads: int = 1):
        import onnxruntime
        from faster_whisper.feature_extractor import (  # type: ignore[import-untyped]
            FeatureExtractor,
        )

        options = onnxruntime.SessionOptions()
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = cpu_threads
        options.log_severity_level = 4
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            model_path, providers=["CPUExecutionProvider"], sess_options=options)
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if "input_features" not in inputs or inputs["input_features"][1:] != [80, FRAMES]:
            raise ValueError(f"{model_path} is not a Smart Turn v3 model (inputs: {inputs})")
        # Our own extractor: faster-whisper's keeps the window length as state, and the
        # STT model's extractor must stay at 30 s.
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        self.description = f"smart-turn v3 ({model_path.rsplit('/', 1)[-1]})"

    def features(self, audio: np.ndarray) -> np.ndarray:
        """[80, 800] float32 log-mel of the last 8 s of 16 kHz `audio`."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        window = WINDOW_S * MODEL_RATE
        if audio.size >= window:
            audio = audio[-window:]
        else:
            audio = np.concatenate([np.zeros(window - audio.size, np.float32), audio])
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        mel = self._features(audio, padding=0)
        return np.ascontiguousarray(mel[:, :FRAMES], dtype=np.float32)

    def probability(self, audio: np.ndarray) -> float:
        """P(the turn is complete) for 16 kHz mono float32 audio ending at the pause.
        Blocking (about 0.1 s on two cores): call it from a worker thread."""
        if audio.size == 0:
            raise ValueError("smart-turn: no audio to judge")
        (logits,) = self.session.run(["logits"], {"input_features": self.features(audio)[None]})
        return float(np.asarray(logits).reshape(-1)[0])
