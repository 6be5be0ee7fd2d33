"""Silero VAD (v6 ONNX, bundled with faster-whisper), streamed window by window.

One ONNX session serves every call (onnxruntime sessions are safe to run from
several threads); each call keeps its own recurrent state in a `VadStream`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voxlive.audio.resample import MODEL_RATE, FrameSplitter

WINDOW = 512
"""Samples per VAD decision at 16 kHz: 32 ms."""
CONTEXT = 64
WINDOW_S = WINDOW / MODEL_RATE


class SileroVad:
    def __init__(self, model_path: str):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(
            model_path, providers=["CPUExecutionProvider"], sess_options=options
        )
        self.description = f"silero v6 ({model_path.rsplit('/', 1)[-1]})"
        inputs = {i.name for i in self.session.get_inputs()}
        if inputs != {"input", "h", "c"}:
            raise ValueError(f"{model_path} is not a Silero v6 VAD model (inputs: {inputs})")

    def stream(self) -> VadStream:
        return VadStream(self)


@dataclass
class VadStream:
    """Per-call VAD state: feed 16 kHz audio of any length, get one probability per window."""

    model: SileroVad
    _splitter: FrameSplitter = field(default_factory=lambda: FrameSplitter(WINDOW))
    _h: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), np.float32))
    _c: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), np.float32))
    _context: np.ndarray = field(default_factory=lambda: np.zeros(CONTEXT, np.float32))

    def process(self, samples: np.ndarray) -> list[float]:
        """Blocking (ONNX inference): call it from a worker thread."""
        probabilities = []
        for window in self._splitter.push(samples):
            model_input = np.concatenate([self._context, window])[np.newaxis, :]
            prob, self._h, self._c = self.model.session.run(
                None, {"input": model_input, "h": self._h, "c": self._c}
            )
            self._context = window[-CONTEXT:]
            probabilities.append(float(np.asarray(prob).reshape(-1)[0]))
        return probabilities
