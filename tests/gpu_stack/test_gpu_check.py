"""The GPU check script runs end to end (on the CPU, tiny models), so that a session
that has a GPU for a few minutes can run it at once. Its figures here mean nothing."""

from __future__ import annotations

import json

import pytest

from tests.gpu_stack import require

require("parler_tts")


def test_the_gpu_check_runs_and_reports_every_part(tmp_path, capsys):
    from voxlive.bench.gpu_check import main

    out = tmp_path / "gpu_check.json"
    assert main(["--device", "cpu", "--size", "tiny", "--dtype", "float32", "--seconds", "0.3",
                 "--runs", "1", "--skip", "compiled", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["device"]["device"] == "cpu"
    parler = results["parler_eager"]
    assert "error" not in parler, parler
    assert parler["first_audio_ms"] > 0 and parler["real_time_factor"] > 0
    assert parler["audio_s"] == pytest.approx(0.3, abs=0.15)
    assert parler["decoder_ms_per_frame"] > 0
    whisper = results["whisper_large_v3_turbo"]
    assert "error" not in whisper, whisper
    assert whisper["ms"] > 0 and whisper["tokens"] == 20
    assert "compiled" not in json.dumps(results)  # skipped as asked
    assert '"parler_eager"' in capsys.readouterr().out  # one JSON line per measurement


def test_without_a_gpu_the_default_run_says_how_to_run_it(capsys):
    import torch

    from voxlive.bench.gpu_check import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main([]) == 2
    assert "--device cpu --size tiny" in capsys.readouterr().err
