"""Smart Turn v3.2 (pipecat-ai, BSD-2-Clause): is the user's turn over, from the sound alone.

A Whisper-tiny-sized encoder with a classifier head, exported to ONNX. It reads the
last 8 s of the utterance at 16 kHz as an 80-bin Whisper log-mel (zero-padded at the
front, the waveform normalised to zero mean and unit variance first, as Whisper's
feature extractor does with `do_normalize`) and answers P(turn complete): a prosody
model, trained on people, that hears a falling or a hanging end of a phrase.

The model file ships inside the `pipecat-ai` wheel, installed with `--no-deps` and
found without importing pipecat (its import pulls a large dependency tree). The
features are Whisper's log-mel, as faster-whisper's numpy FeatureExtractor computes it
(its mel filters, the same framing), but framed as one strided view and transformed in
float32: measured here 3-35 ms against 34-46 ms for the extractor itself on a loaded
machine, within 2e-7 of it. The decision waits for every millisecond of this.
"""

from __future__ import annotations

import functools

import numpy as np

from voxlive.audio.resample import MODEL_RATE

WINDOW_S = 8
"""Seconds of audio the model reads: the end of the utterance."""
HOP = 160
N_FFT = 400
FRAMES = WINDOW_S * MODEL_RATE // HOP
"""Mel frames per input (hop 10 ms): 800."""


@functools.cache
def _mel_filters() -> np.ndarray:
    from faster_whisper.feature_extractor import (  # type: ignore[import-untyped]
        FeatureExtractor,
    )

    return FeatureExtractor.get_mel_filters(MODEL_RATE, N_FFT, n_mels=80).astype(np.float32)


def whisper_log_mel(audio: np.ndarray) -> np.ndarray:
    """[80, len // 160] Whisper log-mel of float32 16 kHz `audio`, as faster-whisper's
    FeatureExtractor computes it with padding=0: a centred STFT (reflect padding, Hann
    window, hop 160, the last frame dropped), its mel filters, log10 clipped 8 below the
    peak."""
    padded = np.pad(np.asarray(audio, np.float32), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:-1]
    spectrum = np.fft.rfft(frames * np.hanning(N_FFT + 1)[:-1].astype(np.float32), axis=-1)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    log_mel = np.log10(np.maximum(_mel_filters() @ power.T, 1e-10))
    log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
    return np.ascontiguousarray((log_mel + 4.0) / 4.0, dtype=np.float32)


class SmartTurnModel:
    """One ONNX session shared by every call (onnxruntime sessions are thread-safe)."""

    def __init__(self, model_path: str, cpu_threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = cpu_threads
        options.log_severity_level = 4
        # Idle threads sleep instead of spinning: on a shared CPU a spinning pool steals
        # the cores the transcriber needs at the same moment.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            model_path, providers=["CPUExecutionProvider"], sess_options=options)
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if "input_features" not in inputs or inputs["input_features"][1:] != [80, FRAMES]:
            raise ValueError(f"{model_path} is not a Smart Turn v3 model (inputs: {inputs})")
        self.description = f"smart-turn v3 ({model_path.rsplit('/', 1)[-1]})"

    def features(self, audio: np.ndarray) -> np.ndarray:
        """[80, 800] float32 log-mel of the last 8 s of 16 kHz `audio`."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        window = WINDOW_S * MODEL_RATE
        if audio.size >= window:
            audio = audio[-window:]
        else:
            audio = np.concatenate([np.zeros(window - audio.size, np.float32), audio])
        return whisper_log_mel((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7))

    def probability(self, audio: np.ndarray) -> float:
        """P(the turn is complete) for 16 kHz mono float32 audio ending at the pause.
        Blocking (about 0.1 s on two cores): call it from a worker thread."""
        if audio.size == 0:
            raise ValueError("smart-turn: no audio to judge")
        (logits,) = self.session.run(["logits"], {"input_features": self.features(audio)[None]})
        return float(np.asarray(logits).reshape(-1)[0])
