"""Sentences from different calls in one Parler-TTS generation, each streamed on its own.

Why batch: a Parler decoder step reads all of the decoder's weights whatever the batch,
so on a GPU four sentences cost about what one does (memory-bound; `voxlive gpu-check`
measures a step at each batch size). Sentences that wait while a generation runs go
into the next one together, as whisper's utterances do (sched/stt.py). transformers'
generate cannot take a row once it runs, so a sentence that arrives mid-generation
waits for that generation to end; the first one never waits for a batch to fill.

Each row streams into its own CodecStream and ends on its own: a short sentence's last
audio goes out when its own last codebook ends (eos), not when the batch's longest
sentence does, and a stopped row (a barge-in) gets padding from its next step on while
the others go on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from voxlive.backends.parler_stream import CodecStream, decode_due


@dataclass(eq=False)
class SpeechRequest:
    """One sentence to say, from a caller's synthesize(), and what the generation thread
    reports back to it."""

    text: str
    description: tuple[Any, Any]  # the cached (encoder output, mask) of its voice and style
    stop: threading.Event
    stream: CodecStream
    deadline: float = 0.0  # when its call would fall silent (sched/fair.py): earliest first
    failure: list[BaseException] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    """Set once nothing more will be written to `stream`: its row ended, was stopped,
    failed, or never ran."""

    def close(self, decode_rest: bool, failure: BaseException | None = None) -> None:
        """End the stream (with its last audio, or without) and let the caller go."""
        if failure is not None:
            self.failure.append(failure)
        if decode_rest:
            self.stream.end()
        else:
            self.stream.abort()
        self.released.set()


class BatchStreamer:
    """What generate() streams to: each step's tokens, (rows x codebooks), split into the
    rows' own streams. `None` rows are fillers (a compiled model runs a fixed batch) and
    get nothing."""

    def __init__(self, rows: list[SpeechRequest | None], codebooks: int, eos_token_id: int,
                 codec_one_pass: bool = False):
        self.rows = rows
        self.codebooks = codebooks
        self.eos_token_id = eos_token_id
        self.codec_one_pass = codec_one_pass  # the rows' chunks in one codec pass (GPU)
        self.open = [row is not None for row in rows]

    def put(self, value: Any) -> None:
        """generate() gives (rows * codebooks, 1) first, then (rows * codebooks,) a step.
        The rows reach a chunk at the same step (parler_stream.decode_due)."""
        tokens = value.reshape(len(self.rows), self.codebooks, -1)
        stepped = []
        for index, row in enumerate(self.rows):
            if row is None or not self.open[index]:
                continue
            if row.stop.is_set():  # nobody listens: decode nothing more
                self._close(index, decode_rest=False)
                continue
            columns = tokens[index]  # (codebooks, steps)
            row.stream.add(columns)
            stepped.append((index, row, int(columns[-1, -1]) == self.eos_token_id))
        decode_due([row.stream for _, row, _ in stepped if row.stream.due()],
                   self.codec_one_pass)
        # Codebooks end in order (ParlerTTSLogitsProcessor), so the last one's eos ends
        # the sentence: its held-back audio goes out now.
        for index, _row, ended in stepped:
            if ended:
                self._close(index, decode_rest=True)

    def end(self) -> None:
        """generate() is done: every row still open gets the rest of its audio."""
        for index in range(len(self.rows)):
            self._close(index, decode_rest=True)

    def fail(self, failure: BaseException) -> None:
        """generate() failed: every row still open ends without more audio, and says why."""
        for index in range(len(self.rows)):
            self._close(index, decode_rest=False, failure=failure)

    def _close(self, index: int, decode_rest: bool,
               failure: BaseException | None = None) -> None:
        row = self.rows[index]
        if row is None or not self.open[index]:
            return
        self.open[index] = False
        row.close(decode_rest, failure)


def stop_rows(flags: list[threading.Event], codebooks: int) -> Any:
    """A transformers StoppingCriteria: a row whose flag is set stops (each sentence is
    `codebooks` rows of generate's batch), the others go on."""
    import torch
    from transformers import StoppingCriteria

    class StopRows(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stopped = torch.tensor([flag.is_set() for flag in flags], dtype=torch.bool)
            return stopped.repeat_interleave(codebooks).to(input_ids.device)

    return StopRows()


def stack_descriptions(descriptions: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """The rows' encoder outputs and masks as one batch, zero-padded to the longest (the
    padding masked out of the cross-attention)."""
    import torch

    longest = max(hidden.shape[1] for hidden, _ in descriptions)
    hiddens, masks = [], []
    for hidden, mask in descriptions:
        short = longest - hidden.shape[1]
        hiddens.append(torch.nn.functional.pad(hidden, (0, 0, 0, short)))
        masks.append(torch.nn.functional.pad(mask, (0, short)))
    return torch.cat(hiddens), torch.cat(masks)
