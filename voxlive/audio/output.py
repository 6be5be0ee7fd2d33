"""The assistant's outgoing audio: queued sentences, read out 20 ms at a time.

The transport pulls one frame per 20 ms tick. A sentence is queued whole, or streamed in
chunks as a TTS makes them (`push(..., complete=False)`, then `extend`); a streamed
sentence that runs dry plays silence until its next chunk instead of ending early. Each
reply's audio is a `Playback` (owned by the session's reply object, voxlive/reply.py):
its sentences and what of them played, whether it may play yet (its turn is committed:
`open`), whether more will come, and whether it is paused under the user's voice. A
reply's audio may be queued before the user's turn is committed; it plays only once
opened. `pause()` and `drop()` take effect at the very next frame, so a barge-in is
silent within one frame; a transport that buffers frames beyond that one registers a
`PlayoutBuffer` to empty its own buffer on a pause (transports/contract.py). The played
samples of each sentence are how the history learns what the user actually heard.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voxlive.audio.resample import CALL_RATE

FRAME_SAMPLES = CALL_RATE // 50
"""20 ms at 48 kHz."""
SAMPLES_PER_WORD = int(0.4 * CALL_RATE)
"""A slow speaking rate (150 words a minute): a sentence still being streamed is
assumed at least this long, so a cut never counts words the user did not hear."""


@dataclass(eq=False)  # compared by identity: the queue holds the very objects
class _Sentence:
    playback: Playback
    text: str
    samples: np.ndarray  # int16, mono, 48 kHz
    played: int = 0
    complete: bool = True  # False while a streaming TTS is still producing it


class Playback:
    """One reply's audio. `playing` is the one record of "paused" outside the turn core:
    the output reads it for every frame, and the reply's synthesis waits on it."""

    def __init__(self, generation: int):
        self.generation = generation
        self.sentences: list[_Sentence] = []
        self.finished = False  # no more sentences will be pushed
        self.started = False
        self.open = False  # the turn is committed: the reply may play
        self.done = False  # all of it played: `on_played` was called
        self.playing = asyncio.Event()  # cleared while paused
        self.playing.set()

    @property
    def paused(self) -> bool:
        return not self.playing.is_set()

    def pause(self) -> None:
        self.playing.clear()

    def resume(self) -> None:
        self.playing.set()

    def heard_text(self) -> str:
        """The words of this reply that were played: whole sentences, then the played
        share of the sentence that was cut (by proportion: piper gives no word timings)."""
        words: list[str] = []
        for sentence in self.sentences:
            sentence_words = sentence.text.split()
            if sentence.complete and sentence.played >= len(sentence.samples):
                words += sentence_words
            else:
                total = len(sentence.samples)
                if not sentence.complete:  # its length is not known yet: at least this
                    total = max(total, len(sentence_words) * SAMPLES_PER_WORD)
                share = sentence.played / max(1, total)
                words += sentence_words[: int(len(sentence_words) * share)]
                break
        return " ".join(words)

    def text(self) -> str:
        """Every sentence of this reply queued so far (the echo check's reference)."""
        return " ".join(s.text for s in self.sentences)


class PlayoutBuffer(Protocol):
    """A transport's own buffer of frames already taken from the output (the local sound
    card's jitter queue): told when the reply pauses, so that what it holds goes silent
    too, and when it plays on (LiveKit Agents' io.AudioOutput: pause/resume)."""

    def paused(self) -> None: ...

    def resumed(self) -> None: ...


def _ignore(generation: int) -> None:
    return None


class AudioOutput:
    def __init__(
        self,
        on_started: Callable[[int], None] = _ignore,
        on_played: Callable[[int], None] = _ignore,
        on_frame: Callable[[np.ndarray], None] | None = None,
    ):
        self._on_started = on_started
        self._on_played = on_played
        self._on_frame = on_frame
        self._queue: deque[_Sentence] = deque()
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self.frames_sent = 0
        self.buffers: list[PlayoutBuffer] = []  # the transport's, if it buffers frames

    def pause(self, playback: Playback) -> None:
        """Hold this reply from the next frame, keeping what is queued."""
        playback.pause()
        for buffer in self.buffers:
            buffer.paused()

    def resume(self, playback: Playback) -> None:
        """Play on from where it paused."""
        playback.resume()
        for buffer in self.buffers:
            buffer.resumed()

    def push(self, playback: Playback, samples: np.ndarray, text: str,
             complete: bool = True) -> None:
        """Queue one sentence of int16 48 kHz mono audio; `complete=False`: its first
        chunk, more follows through `extend`."""
        sentence = _Sentence(playback, text, samples.astype(np.int16, copy=False),
                             complete=complete)
        playback.sentences.append(sentence)
        self._queue.append(sentence)

    def extend(self, playback: Playback, samples: np.ndarray, complete: bool = False) -> None:
        """Append a chunk to this reply's sentence that is still being streamed."""
        streaming = [s for s in playback.sentences if not s.complete]
        if not streaming:
            raise ValueError(f"reply {playback.generation} has no sentence being streamed")
        sentence = streaming[-1]
        if not any(queued is sentence for queued in self._queue):
            return  # dropped (barge-in): what is still synthesised goes nowhere
        if len(samples):
            sentence.samples = np.concatenate([sentence.samples,
                                               samples.astype(np.int16, copy=False)])
        sentence.complete = complete
        if complete and sentence.played >= len(sentence.samples):
            self._queue.remove(sentence)  # it ran dry just as the last (empty) chunk came
            self._maybe_done(playback)

    def open(self, playback: Playback) -> None:
        """The turn is committed: this reply may play."""
        playback.open = True
        self._maybe_done(playback)

    def finish(self, playback: Playback) -> None:
        """No more audio will come for this reply; `on_played` fires once it is all out."""
        playback.finished = True
        self._maybe_done(playback)

    def drop(self, playback: Playback) -> None:
        """Silence this reply now: drop its queued samples."""
        self._queue = deque(s for s in self._queue if s.playback is not playback)

    def clear(self) -> None:
        """Silence now: drop every queued sample."""
        self._queue.clear()

    @property
    def idle(self) -> bool:
        return not self._queue

    def next_frame(self) -> np.ndarray:
        """The next 20 ms to send: reply audio, or silence."""
        frame = self._fill() if self._queue else self._silence
        self.frames_sent += 1
        if self._on_frame is not None:
            self._on_frame(frame)
        return frame

    def _fill(self) -> np.ndarray:
        frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES and self._queue:
            sentence = self._queue[0]
            reply = sentence.playback
            if not reply.open or reply.paused:
                break  # its turn is not committed yet, or the user may be interrupting
            if not reply.started:
                reply.started = True
                self._on_started(reply.generation)
            take = min(FRAME_SAMPLES - filled, len(sentence.samples) - sentence.played)
            start = sentence.played
            frame[filled : filled + take] = sentence.samples[start : start + take]
            sentence.played += take
            filled += take
            if sentence.played >= len(sentence.samples):
                if not sentence.complete:
                    break  # the TTS is behind: silence until its next chunk
                self._queue.popleft()
                self._maybe_done(reply)
        return frame if filled else self._silence

    def _maybe_done(self, playback: Playback) -> None:
        if playback.done or not (playback.finished and playback.open):
            return
        if any(s.playback is playback for s in self._queue):
            return
        playback.done = True
        self._on_played(playback.generation)
