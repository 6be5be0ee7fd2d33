"""Parler-TTS codec frames to audio chunks while generation runs, at a constant cost per chunk.

parler-tts's own ParlerTTSStreamer decodes every code generated so far at every chunk
and keeps the new end: the codec's work per chunk grows with the sentence, so a 10 s
sentence costs about 13 times the decoding of the sentence once (`voxlive bench codec`
measures it). The DAC decoder is a stack of convolutions whose output at a frame depends
on only about CONTEXT_FRAMES frames either side of it (measured, and checked by the
tests), so decoding a window of new frames plus that much context before them gives the
same samples as decoding everything.

The newest `holdback` frames of a window have no frames after them yet, so their audio
is provisional: it is held back, and the next chunk fades from it into the re-decoded,
final version instead of jumping to it (ParlerTTSStreamer cuts there, a click at every
chunk boundary).

It is driven the way transformers drives a streamer: `generate(streamer=...)` calls
`put` with the first column of codes, then with each step's column, then `end`.
"""

from __future__ import annotations

import threading
import time
from queue import Queue
from typing import Any

import numpy as np

CONTEXT_FRAMES = 8
"""Frames of left context for a window decode: DAC's receptive field (44.1 kHz model,
512-sample hop) reaches 8 frames back; more changes no sample."""
HOLDBACK_FRAMES = 4
"""Provisional frames at a window's end (46 ms). Audio this close to the edge is off by
about 3% RMS on random weights (2 frames: 8%, 8 frames: none); it is re-decoded with
the next chunk."""
FADE_SAMPLES = 64
"""1.5 ms fade from the provisional audio into the re-decoded audio: no step at a chunk
boundary."""

_END = None


class CodecStream:
    """An iterator of float32 audio chunks, fed token columns by `generate`."""

    def __init__(self, model: Any, chunk_frames: int, holdback: int = HOLDBACK_FRAMES,
                 context: int = CONTEXT_FRAMES, fade: int = FADE_SAMPLES,
                 stop: threading.Event | None = None):
        self.codec = model.audio_encoder
        self.codebooks: int = model.decoder.num_codebooks
        self.codebook_size: int = model.audio_encoder.config.codebook_size
        self.use_4dim_audio_codes: bool = model.use_4dim_audio_codes
        self.use_audio_scales: bool = model.use_audio_scales
        self.chunk_frames = chunk_frames
        # Half a chunk first: sooner audio, and at a real-time factor under 0.5 it
        # still lasts until the next chunk arrives (no gap after the first chunk).
        self.first_chunk_frames = max(1, chunk_frames // 2)
        self.holdback = holdback
        self.context = context
        self.fade = fade
        self.stop = stop if stop is not None else threading.Event()  # set: decode no more
        self.columns: list[Any] = []  # one (codebooks,) tensor per generation step
        self.frames: list[Any] = []   # complete frames, delay pattern undone
        self.emitted = 0              # frames whose audio has gone out
        self.provisional = np.zeros(0, np.float32)  # audio of the held-back frames
        self.decode_seconds = 0.0     # codec time, for the benchmarks
        self.decoded_frames = 0
        self.queue: Queue[np.ndarray | None] = Queue()

    # --- fed by generate() ------------------------------------------------------------

    def put(self, value: Any) -> None:
        self.add(value)
        if self.due():
            self._decode(final=False)

    def add(self, value: Any) -> None:
        """A step's column (or the first call's), without decoding: `put` without the
        codec, for a caller that decodes several streams together (decode_due)."""
        columns = value.T if value.ndim == 2 else value[None]  # first call: (codebooks, 1)
        if columns.shape[-1] != self.codebooks:
            raise ValueError("CodecStream streams one sentence at a time (batch size 1)")
        for column in columns:
            self._add_column(column)

    def due(self) -> bool:
        """Whether enough new frames wait for the next chunk."""
        wanted = self.chunk_frames if self.emitted else self.first_chunk_frames
        return len(self.frames) - self.holdback - self.emitted >= wanted

    def end(self) -> None:
        """generate() is done: the rest of the audio, then the end of the stream."""
        self._decode(final=True)
        self.queue.put(_END)

    def abort(self) -> None:
        """End the stream without decoding (generation failed)."""
        self.queue.put(_END)

    def _add_column(self, column: Any) -> None:
        """Codebook k lags k+1 steps behind (the delay pattern): frame t is complete
        once codebook k's step t+k+1 is in. Frames holding a special token (bos, eos,
        padding) carry no audio and are dropped."""
        self.columns.append(column)
        t = len(self.columns) - 1 - self.codebooks
        if t < 0:
            return
        frame = np.array([int(self.columns[t + k + 1][k]) for k in range(self.codebooks)])
        if (frame < self.codebook_size).all():
            self.frames.append(frame)

    def _decode(self, final: bool) -> None:
        window = self.window(final)
        if window is not None:
            self.emit(self._decode_frames(*window), window[0], final)

    def window(self, final: bool) -> tuple[int, int] | None:
        """The frames the next chunk decodes (start, stop), with their left context; None
        when nothing is ready or nobody listens."""
        if self.stop.is_set():  # cancelled: nobody will play it
            return None
        ready = len(self.frames) if final else len(self.frames) - self.holdback
        if ready <= self.emitted:
            return None
        return max(0, self.emitted - self.context), len(self.frames)

    def emit(self, audio: np.ndarray, start: int, final: bool) -> None:
        """The chunk out of the window's audio: its new, final part, faded in from the
        provisional audio of last time; the rest held back as provisional."""
        ready = len(self.frames) if final else len(self.frames) - self.holdback
        hop = len(audio) // (len(self.frames) - start)
        cut = (ready - start) * hop
        chunk = audio[(self.emitted - start) * hop:cut].copy()
        fade = min(self.fade, len(self.provisional), len(chunk))
        if fade:
            ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
            chunk[:fade] = self.provisional[:fade] * (1 - ramp) + chunk[:fade] * ramp
        self.provisional = audio[cut:] if not final else np.zeros(0, np.float32)
        self.emitted = ready
        self.queue.put(chunk)

    def _decode_frames(self, start: int, stop: int) -> np.ndarray:
        return decode_windows([self], [(start, stop)])[0]

    # --- read by the caller -----------------------------------------------------------

    def __iter__(self) -> CodecStream:
        return self

    def __next__(self) -> np.ndarray:
        chunk = self.queue.get()
        if chunk is _END:
            raise StopIteration
        return chunk


def decode_windows(streams: list[CodecStream], windows: list[tuple[int, int]]
                   ) -> list[np.ndarray]:
    """Each stream's frames[start:stop] as audio, in one codec pass (the windows must be
    of one length; the streams of one model). The codec's time is shared among them."""
    import torch

    began = time.perf_counter()
    first = streams[0]
    codes = torch.from_numpy(np.stack([
        np.stack(stream.frames[start:stop], axis=1)
        for stream, (start, stop) in zip(streams, windows, strict=True)]))
    codes = codes[None] if first.use_4dim_audio_codes else codes
    kwargs = {"audio_scales": [None] * len(streams)} if first.use_audio_scales else {}
    with torch.inference_mode():
        audio = first.codec.decode(audio_codes=codes.to(first.codec.device),
                                   **kwargs).audio_values
    rows = audio.reshape(len(streams), -1).float().cpu().numpy()
    share = (time.perf_counter() - began) / len(streams)
    for stream, (start, stop) in zip(streams, windows, strict=True):
        stream.decode_seconds += share
        stream.decoded_frames += stop - start
    return list(rows)


def decode_due(streams: list[CodecStream], one_pass: bool) -> None:
    """The chunk each of these streams is due. Sentences generated together reach a chunk
    at the same step; with `one_pass` their windows (of one length) share a codec pass,
    which on a GPU costs about what one sentence's does, so every caller's audio comes
    as soon as the first one's. On a CPU a pass of several costs as much as several
    passes: decoded in turn, the first chunk goes out sooner."""
    if not one_pass:
        for stream in streams:
            stream._decode(final=False)
        return
    by_length: dict[int, list[tuple[CodecStream, tuple[int, int]]]] = {}
    for stream in streams:
        window = stream.window(final=False)
        if window is not None:
            by_length.setdefault(window[1] - window[0], []).append((stream, window))
    for group in by_length.values():
        audios = decode_windows([s for s, _ in group], [w for _, w in group])
        for (stream, (start, _stop)), audio in zip(group, audios, strict=True):
            stream.emit(audio, start, final=False)
