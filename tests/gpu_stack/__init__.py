"""Tests of the gpu profile's Python stack (parler-tts, speechbrain, transformers 4.46).

They need packages that cannot share the CPU test venv (requirements/gpu-stack-tests.txt
says why), so tests/conftest.py leaves this folder out of a plain run and
tests/test_gpu_stack.py runs it in a subprocess with .venv/gpu-stack on the path. On a
machine with `pip install 'voxlive[gpu]'` they are collected directly.
"""

import importlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

GPU_STACK_REASON = ("the gpu stack (parler-tts, speechbrain) is not installed here; "
                    "tests/test_gpu_stack.py runs these tests in .venv/gpu-stack")
REQUIRED = "VOXLIVE_GPU_STACK_REQUIRED"
"""Set by tests/test_gpu_stack.py: there a failed import is an error, never a skip."""


def require(module: str) -> ModuleType:
    """Import a gpu-stack package, or skip where it is not installed (a plain run)."""
    if os.environ.get(REQUIRED):
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=GPU_STACK_REASON)


@contextmanager
def generation_held(parler: Any, at_most_s: float = 60) -> Iterator[None]:
    """Keeps the generation thread busy, so that sentences asked meanwhile wait together
    (as they do when another call's sentence is being made)."""
    running, release = threading.Event(), threading.Event()

    def hold() -> None:
        running.set()
        release.wait(at_most_s)

    job = parler._generator.submit(hold)
    assert running.wait(60)
    try:
        yield
    finally:
        release.set()
        job.result(60)


def pending(parler: Any, count: int) -> None:
    deadline = time.monotonic() + 60  # a safety net for a broken backend, not a timing
    while len(parler._pending) < count:
        assert time.monotonic() < deadline, "the sentences never reached the backend"
        time.sleep(0.01)
