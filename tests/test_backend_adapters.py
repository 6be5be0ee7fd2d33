"""What the backends share: a blocking iterator consumed from asyncio, Whisper's
confidence, the words for an OpenAI-style error body."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator

import pytest

from voxlive.backends.base import BackendError, whisper_confidence
from voxlive.backends.openai_sdk import error_message
from voxlive.backends.threaded import iterate_in_thread


async def test_items_cross_from_a_worker_thread_in_order() -> None:
    threads: set[str] = set()

    def count(stop: threading.Event) -> Iterator[int]:
        for i in range(5):
            threads.add(threading.current_thread().name)
            yield i

    got = [i async for i in iterate_in_thread(count, stage="tts", failure="x", name="counter")]
    assert got == [0, 1, 2, 3, 4]
    assert threads == {"counter"}


@pytest.mark.parametrize("wait_on_close", [True, False])
async def test_leaving_the_loop_stops_the_source(wait_on_close: bool) -> None:
    produced: list[int] = []
    saw_stop = threading.Event()
    closed = threading.Event()

    def endless(stop: threading.Event) -> Iterator[int]:
        try:
            i = 0
            while not stop.wait(0.001):
                produced.append(i)
                yield i
                i += 1
            saw_stop.set()
        finally:
            closed.set()  # the generator is closed on its own thread

    items = iterate_in_thread(endless, stage="llm", failure="x", wait_on_close=wait_on_close)
    assert [await anext(items), await anext(items)] == [0, 1]
    await items.aclose()
    if wait_on_close:
        assert closed.is_set()  # aclose returned after the worker finished
    else:
        await asyncio.to_thread(closed.wait, 5)
    assert closed.is_set()
    count = len(produced)
    await asyncio.sleep(0.05)
    assert len(produced) == count  # nothing more is made once it stopped


async def test_a_failure_is_a_backend_error_of_the_stage() -> None:
    def broken(stop: threading.Event) -> Iterator[str]:
        yield "a"
        raise ValueError("the model fell over")

    got: list[str] = []
    with pytest.raises(BackendError) as caught:
        async for item in iterate_in_thread(broken, stage="tts", failure="speech synthesis failed"):
            got.append(item)
    assert got == ["a"]
    assert caught.value.stage == "tts"
    assert caught.value.message == "speech synthesis failed: the model fell over"
    assert isinstance(caught.value.__cause__, ValueError)

    def reported(stop: threading.Event) -> Iterator[str]:
        raise BackendError("tts", "espeak-ng failed: no voice")
        yield  # a generator

    with pytest.raises(BackendError) as caught:
        _ = [i async for i in iterate_in_thread(reported, stage="tts", failure="unused")]
    assert caught.value.message == "espeak-ng failed: no voice"  # as the backend said it


def test_whisper_confidence_weighs_segments_by_their_text() -> None:
    segments = [(" Hello", -0.1), (" there my friend", -0.5), (" x", None),
                (" y", float("nan"))]
    expected = math.exp((5 * -0.1 + 15 * -0.5) / 20)
    assert whisper_confidence(segments) == pytest.approx(expected)
    assert whisper_confidence([]) is None
    assert whisper_confidence([("a", None)]) is None
    assert whisper_confidence([("a", 0.5)]) == 1.0  # a server's odd positive value, clamped


def test_error_bodies_of_openai_and_vllm() -> None:
    assert error_message({"message": "KV cache exhausted", "type": "InternalServerError"}) == (
        "KV cache exhausted")  # the SDK hands OpenAI's inner "error" object
    assert error_message({"error": {"message": "bad key", "code": 401}}) == "bad key"
    assert error_message({"object": "error", "message": "The model `x` does not exist.",
                          "code": 404}) == "The model `x` does not exist."
    assert error_message({"error": "plain"}) == "plain"
    assert error_message("  text body \n") == "text body"
    assert error_message({"detail": "Not Found"}) is None
    assert error_message(None) is None


async def test_the_source_runs_in_the_consumers_context() -> None:
    """A backend shared by many calls sees whose work it does (voxlive/sched)."""
    import contextvars

    whose = contextvars.ContextVar("whose", default="nobody")

    def source(stop: threading.Event) -> Iterator[str]:
        yield whose.get()

    whose.set("reply 7")
    assert [w async for w in iterate_in_thread(source, stage="tts", failure="x")] == ["reply 7"]
