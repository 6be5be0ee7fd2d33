"""Parler-TTS (the Expresso fine-tune): a voice described in words, streamed in chunks.

Why it is built the way it is (DESIGN.md, "What the GPU stack costs"): in plain eager
PyTorch a Parler-mini-sized decoder is barely real-time even on an H200, so

- the description ("Thomas speaks in a happy tone ...") is encoded once per speaker
  and style and the encoder output cached: a reply pays only for its own words;
- audio streams out every `chunk_s` seconds of codec frames, so the first audio does
  not wait for the sentence; the codec decodes only the new frames of each chunk (plus
  a little context, voxlive/backends/parler_stream.py), not the whole sentence again;
- on CUDA the decoder runs with a static KV cache under torch.compile, with prompts
  padded to a few fixed lengths so that compiled graphs are reused, and a warm-up at
  load so the first caller does not pay for compilation;
- a cancelled reply stops its sentence at the next decoding step (a StoppingCriteria
  reads a flag), so the GPU is free for the next turn within a chunk;
- sentences from different calls that wait while a generation runs are generated
  together, up to `max_batch`, the most urgent first (voxlive/backends/parler_batch.py):
  a decoder step costs about the same for four sentences as for one.

Every generation runs on one long-lived thread: the static cache belongs to the model,
and torch.compile's CUDA graphs are recorded per thread (a thread per sentence would
record them again for every sentence). Compiled, every generation runs `max_batch` rows
(unused ones stopped from the start), so one cache and one set of graphs serve them all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from pydantic import Field

from voxlive.backends.base import BackendError
from voxlive.backends.packaged import resolve_model
from voxlive.backends.parler_batch import (
    BatchStreamer,
    SpeechRequest,
    stack_descriptions,
    stop_rows,
)
from voxlive.backends.parler_stream import CodecStream
from voxlive.backends.registry import Backend, Strict
from voxlive.sched.fair import StageStats
from voxlive.sched.reply import current_deadline

log = logging.getLogger(__name__)

EXPRESSO_STYLES = ("default", "happy", "sad", "confused", "laughing", "whisper", "enunciated")
"""The speaking styles the Expresso fine-tune was trained on."""

STYLE_BY_REPLY_STYLE = {"default": "default", "cheerful": "happy", "calm": "enunciated"}
"""voxlive's reply styles (voxlive/emotion/style.py) in Expresso's terms. "calm" is
enunciated: slow and clear, which is how one answers someone upset; Expresso has
no plain calm style."""

PROMPT_BUCKETS = (32, 64, 128, 256)
"""Prompt lengths in tokens that compiled graphs are made for (the chunker sends one
sentence at a time; a longer one gets a graph of its own length)."""
DESCRIPTION_TOKENS = 48
"""Compiled: every description is padded to this length, so that all styles share one
cross-attention cache shape (a new shape means a new static cache and new graphs)."""
WARM_UP_FRAMES = 24


class ParlerTts(Strict):
    """Parler-TTS (Expresso fine-tune): a voice described in words, the style per reply."""

    backend: Literal["parler"]
    model: str = "parler-tts/parler-tts-mini-expresso"
    device: str = "cuda"
    dtype: Literal["float32", "float16", "bfloat16"] = "bfloat16"
    speaker: str = Field("Thomas", description="an Expresso speaker: Thomas, Talia, ...")
    chunk_s: float = Field(0.2, gt=0, le=2, description="audio per streamed chunk")
    compile: bool = Field(True, description="static KV cache + torch.compile on CUDA")
    max_new_tokens: int = Field(1400, ge=16, description="codec frames per sentence, at most")
    max_batch: int = Field(4, ge=1, le=32, description="sentences (of any calls) generated "
                           "together; compiled, every generation runs this many rows")


def describe(speaker: str, style: str) -> str:
    """The description prompt, in the phrasing of Expresso's training annotations."""
    if style == "whisper":
        return f"{speaker} whispers in a quiet tone with very clear audio."
    if style == "enunciated":
        return f"{speaker} speaks slowly and clearly in an enunciated tone with very clear audio."
    return f"{speaker} speaks in a {style} tone with very clear audio."


class ParlerTTS:
    def __init__(self, config: ParlerTts):
        # parler-tts logs three whole model configs at every load, and that flash
        # attention is missing (it is optional): noise in the daemon's log.
        logging.getLogger("parler_tts").setLevel(logging.ERROR)
        import torch
        from parler_tts import ParlerTTSForConditionalGeneration
        from transformers import AutoTokenizer

        self.config = config
        self._torch = torch
        path = resolve_model(config.model)
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("tts", f"device {config.device!r} asked for, but torch sees no "
                               "CUDA GPU; set tts.device: cpu in models.yaml")
        self.device = torch.device(config.device)
        dtype = getattr(torch, config.dtype)
        if self.device.type == "cpu" and dtype != torch.float32:
            log.info("parler: %s on the CPU is slow or unsupported; using float32", config.dtype)
            dtype = torch.float32
        self.model = ParlerTTSForConditionalGeneration.from_pretrained(
            path, torch_dtype=dtype).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        codec = self.model.audio_encoder.config
        self.sample_rate: int = int(codec.sampling_rate)
        self.frame_rate: int = int(codec.frame_rate)
        self.chunk_frames = max(2, round(config.chunk_s * self.frame_rate))
        self._descriptions: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.description_encodings = 0  # how often the text encoder ran (cache misses)
        self._generator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parler")
        self._pending: list[SpeechRequest] = []
        self._pending_lock = threading.Lock()
        self.max_batch = config.max_batch
        self.codec_one_pass = self.device.type == "cuda"
        """A batch's chunks in one codec pass (GPU), or in turn (CPU: sooner first audio)."""
        self.batch_stats = StageStats()
        """Generations and their rows. The daemon's scheduler (sched/tts.py) puts its own
        stats here, so /metrics counts the batches this backend makes."""
        self.compiled = False
        if config.compile and self.device.type == "cuda":
            self._compile()
        self.description = (f"Parler-TTS {path} ({config.speaker}, {self.device}, "
                            f"{'compiled' if self.compiled else 'eager'})")

    # --- the description cache ---------------------------------------------------------

    def encoded_description(self, style: str) -> tuple[Any, Any]:
        """The text encoder's output for this speaker and style, computed once."""
        key = (self.config.speaker, style)
        cached = self._descriptions.get(key)
        if cached is not None:
            return cached
        torch = self._torch
        padding = {"padding": "max_length", "max_length": DESCRIPTION_TOKENS} if self.compiled \
            else {}
        tokens = self.tokenizer(describe(*key), return_tensors="pt", **padding).to(self.device)
        with torch.inference_mode():
            hidden = self.model.text_encoder(
                input_ids=tokens.input_ids, attention_mask=tokens.attention_mask,
            ).last_hidden_state
            # As ParlerTTSForConditionalGeneration.generate prepares it: projected to the
            # decoder's width where they differ, padding zeroed.
            if (self.model.text_encoder.config.hidden_size != self.model.decoder.config.hidden_size
                    and self.model.decoder.config.cross_attention_hidden_size is None):
                hidden = self.model.enc_to_dec_proj(hidden)
            hidden = hidden * tokens.attention_mask[..., None]
        self.description_encodings += 1
        self._descriptions[key] = (hidden, tokens.attention_mask)
        return hidden, tokens.attention_mask

    # --- synthesis ---------------------------------------------------------------------

    def synthesize(self, text: str, style: str = "default",
                   stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Yield float32 chunks of about `chunk_s` at `sample_rate`. Setting `stop`, or
        closing the iterator, stops this sentence at the next step, and the codec decodes
        nothing more of it. Several callers at once share generations (max_batch)."""
        expresso = STYLE_BY_REPLY_STYLE.get(style, style if style in EXPRESSO_STYLES
                                            else "default")
        cancelled = stop if stop is not None else threading.Event()
        request = SpeechRequest(text, self.encoded_description(expresso), cancelled,
                                CodecStream(self.model, self.chunk_frames, stop=cancelled),
                                deadline=current_deadline())
        with self._pending_lock:
            self._pending.append(request)
        self._generator.submit(self._generate_pending)
        try:
            for chunk in request.stream:
                if len(chunk):
                    yield chunk.astype(np.float32, copy=False)
        finally:
            cancelled.set()
            with self._pending_lock:
                waiting = request in self._pending
                if waiting:
                    self._pending.remove(request)
            if not waiting:  # in a generation: its row stops at the next step
                request.released.wait()
        if request.failure:
            failure = request.failure[0]
            raise BackendError("tts", f"Parler-TTS failed: {failure}") from failure

    def _generate_pending(self) -> None:
        """Runs on the generation thread: one generation for the sentences waiting now
        (none: an earlier run took them). Every request taken is released, whatever
        happens, so no reader hangs."""
        with self._pending_lock:  # the most urgent first: a caller waiting in silence
            self._pending.sort(key=lambda request: request.deadline)  # stable: FIFO on ties
            taken = self._pending[:self.max_batch]
            del self._pending[:len(taken)]
        batch = []
        for request in taken:
            if request.stop.is_set():  # cancelled while another generation ran
                request.close(decode_rest=False)
            else:
                batch.append(request)
        if not batch:
            return
        rows: list[SpeechRequest | None] = list(batch)
        if self.compiled:  # one batch size, one static cache, one set of graphs
            rows += [None] * (self.max_batch - len(batch))
        self.batch_stats.batch(len(batch))
        streamer = BatchStreamer(rows, self.model.decoder.num_codebooks,
                                 int(self.model.generation_config.eos_token_id),
                                 codec_one_pass=self.codec_one_pass)
        flags = [row.stop if row is not None else _ALREADY_SET for row in rows]
        try:
            with self._torch.inference_mode():
                self.model.generate(**self._batch_inputs(rows), streamer=streamer,
                                    stopping_criteria=[stop_rows(flags, streamer.codebooks)],
                                    max_new_tokens=self.config.max_new_tokens)
        except BaseException as exc:  # noqa: B036 - each reader raises it
            streamer.fail(exc)
        else:
            streamer.end()  # generate() has ended every row already: nothing left open

    def _batch_inputs(self, rows: list[SpeechRequest | None]) -> dict[str, Any]:
        """generate()'s inputs for these rows; a filler row repeats the first sentence
        (it is stopped from the first step)."""
        first = next(row for row in rows if row is not None)
        chosen = [row if row is not None else first for row in rows]
        hidden, mask = stack_descriptions([row.description for row in chosen])
        prompt = self._prompt_tokens([row.text for row in chosen])
        return {"encoder_outputs": _encoder_output(hidden), "attention_mask": mask,
                "prompt_input_ids": prompt.input_ids,
                "prompt_attention_mask": prompt.attention_mask}

    def _prompt_tokens(self, texts: list[str]) -> Any:
        """The words to say, padded to the longest; compiled, to a bucket length (fewer
        graphs)."""
        if not self.compiled:
            return self.tokenizer(texts, return_tensors="pt", padding="longest").to(self.device)
        length = max(len(ids) for ids in self.tokenizer(texts).input_ids)
        bucket = next((b for b in PROMPT_BUCKETS if b >= length), length)
        return self.tokenizer(texts, return_tensors="pt", padding="max_length",
                              max_length=bucket).to(self.device)

    # --- speed ---------------------------------------------------------------------------

    def _compile(self) -> None:
        """Static KV cache + torch.compile of the forward pass, then generations that
        make the graphs before the first caller: per prompt bucket, with the cache at
        its full size (max_new_tokens), stopped after a few frames."""
        torch = self._torch
        from transformers import StaticCache

        if not hasattr(StaticCache, "max_batch_size"):
            # parler-tts 0.2.3 reuses its static cache by reading `max_batch_size`, which
            # its own pinned transformers (4.46.1) renamed `batch_size`.
            StaticCache.max_batch_size = property(lambda cache: cache.batch_size)
        self.model.generation_config.cache_implementation = "static"
        self.model.forward = torch.compile(self.model.forward, mode="reduce-overhead")
        self.compiled = True
        self._generator.submit(self._warm_up).result()

    def _warm_up(self) -> None:
        """A generation per prompt bucket at the batch size every generation runs."""
        torch = self._torch
        description = self.encoded_description("default")
        for bucket in PROMPT_BUCKETS[:2]:
            words = "Hello there, this warms up the speech model."
            rows = [SpeechRequest(words, description, threading.Event(),
                                  CodecStream(self.model, self.chunk_frames))]
            inputs = self._batch_inputs(rows + [None] * (self.max_batch - 1))
            tokens = self.tokenizer([words] * self.max_batch, return_tensors="pt",
                                    padding="max_length", max_length=bucket).to(self.device)
            inputs.update(prompt_input_ids=tokens.input_ids,
                          prompt_attention_mask=tokens.attention_mask)
            for _ in range(2):  # reduce-overhead records its CUDA graphs on the second run
                with torch.inference_mode():
                    self.model.generate(**inputs, stopping_criteria=[stop_after(WARM_UP_FRAMES)],
                                        max_new_tokens=self.config.max_new_tokens)


_ALREADY_SET = threading.Event()
_ALREADY_SET.set()
"""The stop flag of a filler row: stopped from the first step."""


def _encoder_output(hidden: Any) -> Any:
    from transformers.modeling_outputs import BaseModelOutput

    return BaseModelOutput(last_hidden_state=hidden)


def stop_after(steps: int) -> Any:
    """A transformers StoppingCriteria that ends generation after `steps` new frames."""
    import torch
    from transformers import StoppingCriteria

    class StopAfter(StoppingCriteria):
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return torch.full((input_ids.shape[0],), self.calls >= steps, dtype=torch.bool,
                              device=input_ids.device)

    return StopAfter()


BACKEND = Backend(
    stage="tts", name="parler", config=ParlerTts, factory=ParlerTTS, package="parler_tts",
    install="pip install 'voxlive[gpu]'  (parler-tts, transformers 4.46.1)",
)
