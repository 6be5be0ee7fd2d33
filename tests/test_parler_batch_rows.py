"""How one Parler generation's tokens reach each row's stream (voxlive/backends/parler_batch.py).

The streams here are scripted stand-ins that record what they get: the point is the
routing, row ends and failures, on token arrays shaped as generate() streams them. The
real model in a batch is tested in tests/gpu_stack/test_parler_batch.py.
"""

from __future__ import annotations

import threading

import numpy as np

from voxlive.backends.parler_batch import BatchStreamer, SpeechRequest

CODEBOOKS = 3
EOS = 64
BOS = 65


class RecordedStream:
    def __init__(self) -> None:
        self.columns: list[list[int]] = []
        self.ended = self.aborted = False

    def add(self, value: np.ndarray) -> None:
        assert value.shape[0] == CODEBOOKS  # (codebooks, steps), as CodecStream takes it
        self.columns += value.T.tolist()

    def due(self) -> bool:
        return False  # the codec's part is tested on the real model (gpu_stack)

    def end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.aborted = True


def request(text: str) -> SpeechRequest:
    return SpeechRequest(text, (None, None), threading.Event(), RecordedStream())  # type: ignore[arg-type]


def step(*rows: list[int]) -> np.ndarray:
    """One step's tokens as generate() streams them: (rows * codebooks,)."""
    return np.array([token for row in rows for token in row])


def test_each_row_gets_its_own_columns_and_ends_at_its_own_eos() -> None:
    short, long = request("Hi."), request("A longer sentence.")
    streamer = BatchStreamer([short, long], CODEBOOKS, EOS)
    streamer.put(np.full((2 * CODEBOOKS, 1), BOS))
    streamer.put(step([1, 2, 3], [4, 5, 6]))
    streamer.put(step([EOS, EOS, EOS], [7, 8, 9]))  # the short row's last codebook ends
    assert short.stream.ended and short.released.is_set()
    assert not long.stream.ended and not long.released.is_set()
    streamer.put(step([EOS, EOS, EOS], [10, 11, 12]))  # padding: not passed on
    streamer.end()
    assert short.stream.columns == [[BOS] * 3, [1, 2, 3], [EOS] * 3]
    assert long.stream.columns == [[BOS] * 3, [4, 5, 6], [7, 8, 9], [10, 11, 12]]
    assert long.stream.ended and long.released.is_set()


def test_an_eos_in_a_lower_codebook_does_not_end_the_row() -> None:
    row = request("Hi.")
    streamer = BatchStreamer([row], CODEBOOKS, EOS)
    streamer.put(step([EOS, 5, 6]))
    assert not row.released.is_set()


def test_a_stopped_row_gets_nothing_more_and_the_others_go_on() -> None:
    stopped, going = request("Stop me."), request("Keep going.")
    streamer = BatchStreamer([stopped, going], CODEBOOKS, EOS)
    streamer.put(step([1, 2, 3], [4, 5, 6]))
    stopped.stop.set()
    streamer.put(step([7, 8, 9], [10, 11, 12]))
    assert stopped.stream.aborted and stopped.released.is_set()
    assert stopped.stream.columns == [[1, 2, 3]]
    assert going.stream.columns == [[4, 5, 6], [10, 11, 12]] and not going.released.is_set()


def test_filler_rows_get_nothing() -> None:
    row = request("Alone in a compiled batch of three.")
    streamer = BatchStreamer([row, None, None], CODEBOOKS, EOS)
    streamer.put(step([1, 2, 3], [EOS] * 3, [EOS] * 3))
    streamer.end()
    assert row.stream.columns == [[1, 2, 3]] and row.stream.ended


def test_a_failed_generation_ends_every_open_row_with_its_failure() -> None:
    done, open_row = request("Done."), request("Still going.")
    streamer = BatchStreamer([done, open_row], CODEBOOKS, EOS)
    streamer.put(step([EOS] * 3, [1, 2, 3]))
    failure = RuntimeError("CUDA error: out of memory")
    streamer.fail(failure)
    assert done.failure == [] and done.stream.ended
    assert open_row.failure == [failure] and open_row.stream.aborted
    assert open_row.released.is_set()
    streamer.end()  # nothing left open: no second end
    assert not open_row.stream.ended
