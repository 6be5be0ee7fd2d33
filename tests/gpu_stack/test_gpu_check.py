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
                 "--runs", "1", "--skip", "compiled", "--codec-seconds", "0.4",
                 "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["device"]["device"] == "cpu"
    parler = results["parler_eager"]
    assert "error" not in parler, parler
    assert parler["first_audio_ms"] > 0 and parler["real_time_factor"] > 0
    assert parler["audio_s"] == pytest.approx(0.3, abs=0.15)
    assert parler["decoder_ms_per_frame"] > 0 and parler["decoder_ms_per_frame_batch_4"] > 0
    concurrent = parler["concurrent"]  # four callers at once: every one heard, in batches
    assert concurrent["sentences"] == 4 and len(concurrent["first_audio_ms"]) == 4
    assert 1 <= concurrent["mean_batch"] <= 4 and concurrent["all_done_ms"] > 0
    codec = parler["codec_streaming"]["0.4s"]
    for streamer in ("parler_tts_streamer", "voxlive_codec_stream"):
        assert codec[streamer]["codec_s"] > 0 and codec[streamer]["samples_vs_whole"] == 0
    assert codec["voxlive_codec_stream"]["snr_db_vs_whole"] > 45
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


def test_the_codec_bench_compares_both_streamers_on_the_real_codec(capsys):
    """`voxlive bench codec`: the 44.1 kHz DAC of Parler mini, behind a tiny decoder."""
    from voxlive.cli import main

    assert main(["bench", "codec", "--seconds", "0.6", "--json"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    bench = results["0.6s"]
    assert bench["audio_s"] == pytest.approx(0.6, abs=0.02)
    ours, theirs = bench["voxlive_codec_stream"], bench["parler_tts_streamer"]
    assert ours["samples_vs_whole"] == 0 == theirs["samples_vs_whole"]
    assert ours["snr_db_vs_whole"] > 45
    assert ours["chunks"] >= 3 and ours["first_audio_step"] < 30
