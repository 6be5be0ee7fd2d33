"""Tests of the gpu profile's Python stack (parler-tts, speechbrain, transformers 4.46).

They need packages that cannot share the CPU test venv (requirements/gpu-stack-tests.txt
says why), so tests/conftest.py leaves this folder out of a plain run and
tests/test_gpu_stack.py runs it in a subprocess with .venv/gpu-stack on the path. On a
machine with `pip install 'voxlive[gpu]'` they are collected directly.
"""

import importlib
import os
from types import ModuleType

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
