"""The pure parts of scale-out: the serve-models config, the wire format both runtimes
share, the micro-batcher, and /healthz's "full" (what a load balancer reads)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import numpy as np
import pytest

from voxlive.backends.stt_remote import confidence_of, encode_wav, multipart
from voxlive.config import ConfigError
from voxlive.server.health import health_report
from voxlive.serving import wire
from voxlive.serving.batcher import MicroBatcher
from voxlive.serving.config import load_serve_config


def test_serve_config_from_a_file_with_overrides(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "serve.yaml"
    path.write_text("profile: gpu\nport: 9000\nstt: {replicas: 4, num_gpus: 0.25}\n"
                    "vision: {enabled: false}\n")
    config = load_serve_config(path, {"port": 9100, "host": None})
    assert (config.profile, config.port, config.host) == ("gpu", 9100, "127.0.0.1")
    assert config.stt.replicas == 4 and config.stt.num_gpus == 0.25
    assert config.stages() == ["stt", "tts", "emotion"]
    assert config.tts.max_batch_size == 1  # speech streams one request at a time


def test_serve_config_errors_name_the_key(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "serve.yaml"
    path.write_text("stt: {replicas: 0, gpus: 1}\n")
    with pytest.raises(ConfigError) as error:
        load_serve_config(path)
    text = str(error.value)
    assert "stt.replicas" in text and "stt.gpus" in text
    with pytest.raises(ConfigError, match="no such file"):
        load_serve_config(tmp_path / "missing.yaml")


def test_a_transcription_request_round_trips_the_daemons_own_encoding() -> None:
    audio = (0.5 * np.sin(np.arange(16_000) / 10)).astype(np.float32)
    body, content_type = multipart({"model": "stt", "response_format": "verbose_json"},
                                   "file", "a.wav", encode_wav(audio), "audio/wav")
    decoded, fmt = wire.transcription_request(body, content_type)
    assert fmt == "verbose_json" and decoded.size == audio.size
    assert np.abs(decoded - audio).max() < 1e-3
    answer, kind = wire.transcription_answer("Hello there.", 0.9, 1.0, fmt)
    payload = json.loads(answer)
    assert kind == "application/json" and payload["text"] == "Hello there."
    assert confidence_of(payload, payload["text"]) == pytest.approx(0.9)  # the client's read


def test_bad_requests_are_clear_4xx_errors() -> None:
    with pytest.raises(wire.WireError, match="multipart") as error:
        wire.transcription_request(b"{}", "application/json")
    assert error.value.status == 400 and error.value.body()["error"]["code"] == 400
    body, content_type = multipart({"model": "x"}, "nofile", "a.wav", b"RIFF", "audio/wav")
    with pytest.raises(wire.WireError, match="missing the `file` field"):
        wire.transcription_request(body, content_type)
    body, content_type = multipart({}, "file", "a.wav", b"not audio at all", "audio/wav")
    with pytest.raises(wire.WireError, match="cannot decode"):
        wire.transcription_request(body, content_type)
    for bad, words in ((b"[]", "JSON object"), (b'{"input": "  "}', "non-empty"),
                       (b'{"input": "Hi", "speed": 0.1}', "speed"),
                       (b'{"input": "Hi", "response_format": "wav"}', "pcm")):
        with pytest.raises(wire.WireError, match=words):
            wire.speech_request(bad)
    assert wire.speech_request(b'{"input": "Hi", "speed": 1.15}').style == "cheerful"
    assert wire.speech_request(b'{"input": "Hi", "speed": 0.85}').style == "calm"


async def test_the_micro_batcher_puts_concurrent_requests_in_one_batch() -> None:
    seen: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        seen.append(items)
        return [2 * i for i in items]

    batcher = MicroBatcher(double, max_size=3, wait_s=0.5)
    try:
        results = await asyncio.gather(*[batcher.submit(i) for i in range(5)])
    finally:
        await batcher.close()
    assert [r for r, _ in results] == [0, 2, 4, 6, 8]
    assert sorted(len(b) for b in seen) == [2, 3]  # at most max_size, never one by one
    assert {size for _, size in results} == {2, 3}


def stub_daemon(calls: int, max_calls: int = 2, stuck: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        stuck_calls=lambda: stuck, loop_lag=SimpleNamespace(lag_s=0.01),
        limits=SimpleNamespace(max_loop_lag_s=2.0), live_calls=lambda: calls,
        config=SimpleNamespace(server=SimpleNamespace(max_calls=max_calls)),
        profile_name="embedded", models=SimpleNamespace(stt=SimpleNamespace(description="w")))


def test_healthz_says_full_so_a_balancer_routes_around_it() -> None:
    body, status = health_report(stub_daemon(calls=1))
    assert (status, body["status"], body["calls"], body["max_calls"]) == (200, "ok", 1, 2)
    body, status = health_report(stub_daemon(calls=2))
    assert (status, body["status"]) == (503, "full")
    body, status = health_report(stub_daemon(calls=2), live_only=True)
    assert (status, body["status"]) == (200, "full")  # alive: a restarter leaves it alone
    body, status = health_report(stub_daemon(calls=2, stuck=1), live_only=True)
    assert (status, body["status"]) == (503, "not ok")  # broken is broken, full or not


def test_serve_models_cli_reports_a_bad_serve_config(tmp_path, capsys) -> None:  # noqa: ANN001
    from voxlive.cli import main

    assert main(["serve-models", "--serve-config", str(tmp_path / "none.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "serve.yaml"
    bad.write_text("tts: {replicas: -1}\n")
    assert main(["serve-models", "--serve-config", str(bad)]) == 2
    assert "tts.replicas" in capsys.readouterr().err



def test_whisper_video_outros_are_no_words_and_thanks_are_words() -> None:
    from voxlive.backends.base import Transcript, without_outro

    outros = ["Thank you for watching, we will see you in the next video.",
              "Thanks for watching!", "I hope you enjoyed this video and I'll see you in the "
              "next video.", "Please subscribe to my channel.", "Subtitles by Amara.org"]
    words = ["Thank you very much.", "Thank you.", "What are you watching?",
             "Can you help me subscribe to a newsletter?"]
    assert [without_outro(Transcript(t, 0.9)).text for t in outros] == [""] * len(outros)
    assert [without_outro(Transcript(t, 0.9)).text for t in words] == words
