"""The gpu profile's plumbing tests, run in the gpu stack's own environment.

parler-tts pins transformers 4.46.1 and speechbrain needs torchaudio, neither of which
can share this venv (requirements/gpu-stack-tests.txt); `make setup-test` installs them
into .venv/gpu-stack. This test runs tests/gpu_stack, plus the SigLIP tests (the gpu
profile runs SigLIP on that same pinned transformers), in a subprocess with that folder
in front on the path, and fails if any of them fails or is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.gpu_stack import REQUIRED

GPU_STACK = REPO / ".venv" / "gpu-stack"
SIGLIP_TESTS = [
    "tests/test_vision_backends.py::test_siglip_plumbing_with_random_weights",
    "tests/test_vision_backends.py::test_siglip_scores_match_the_full_model",
    "tests/test_vision_backends.py::test_siglip_min_score_and_top_k",
    "tests/test_vision_backends.py::test_siglip_half_precision_dtype",
]


@pytest.mark.models
def test_gpu_stack_plumbing_in_its_own_environment():
    if not (GPU_STACK / ".installed").exists():
        pytest.skip("the gpu stack's test environment is not built here: "
                    "`make setup-test` installs it into .venv/gpu-stack")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(GPU_STACK), str(REPO)]),
           REQUIRED: "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/gpu_stack", *SIGLIP_TESTS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    print(report)
    assert result.returncode == 0, report
    summary = result.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert "skipped" not in summary and passed >= 10 + len(SIGLIP_TESTS), summary
