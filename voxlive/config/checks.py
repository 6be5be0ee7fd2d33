"""Can this machine run a profile: the backends' Python packages, programs and model files.

The second step of validation, after loading.py has checked the file's shape: it looks
at what is installed here, so the CLI runs it just before it loads a profile's models,
and `voxlive doctor` reports it. Where a model reference points (`resolve_model`, for
the backends) lives here too, beside `model_problem`: the check and the loading must
agree on it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from voxlive.backends.packaged import is_packaged, packaged_problem, resolve_packaged
from voxlive.config.schema import VoxliveConfig

# backend name -> (python module it imports, how to install it)
BACKEND_PACKAGES: dict[str, tuple[str, str]] = {
    "silero": ("onnxruntime", "pip install onnxruntime"),
    "faster-whisper": ("faster_whisper", "pip install faster-whisper"),
    "llama-cpp": ("llama_cpp", "pip install 'voxlive[embedded]'  (builds llama-cpp-python)"),
    "remote": ("", ""),  # plain HTTP from the standard library
    "openai": ("aiohttp", "pip install aiohttp"),
    "piper": ("piper", "pip install 'voxlive[piper]'  (piper-tts is GPL-3.0)"),
    "espeak-ng": ("", "apt-get install espeak-ng"),
    "parler": ("parler_tts", "pip install 'voxlive[gpu]'  (parler-tts, transformers 4.46.1)"),
    "opencv": ("cv2", "pip install 'voxlive[vision]'  (opencv-python-headless)"),
    "siglip": ("transformers", "pip install 'voxlive[siglip]'  (torch and transformers)"),
    "prosody": ("numpy", "pip install numpy"),
    "speechbrain": ("speechbrain", "pip install 'voxlive[emotion]'  (speechbrain, torchaudio)"),
}

MODEL_FIELDS = {"vad": "model", "stt": "model", "llm": "model", "tts": "voice",
                "vision": "model", "emotion": "model"}
STAGES = ("vad", "stt", "llm", "tts", "vision", "emotion")


def check_profile(config: VoxliveConfig, profile_name: str | None = None) -> list[str]:
    """Problems that stop this profile from loading here: missing packages or model files."""
    name = profile_name or config.default_profile
    profile = config.profile(name)
    problems: list[str] = []
    for stage in STAGES:
        stage_config = getattr(profile, stage)
        if stage_config is None:
            continue  # an optional stage that this profile does not use
        key = f"profiles.{name}.{stage}"
        module, install = BACKEND_PACKAGES[stage_config.backend]
        if module and importlib.util.find_spec(module) is None:
            problems.append(
                f"{key}.backend: '{stage_config.backend}' needs the Python package "
                f"'{module}', which is not installed; install it with: {install}"
            )
        if stage_config.backend == "espeak-ng" and not _which("espeak-ng"):
            problems.append(f"{key}.backend: the espeak-ng program is missing; {install}")
        field = MODEL_FIELDS[stage]
        reference = getattr(stage_config, field, None) or getattr(stage_config, "model", None)
        if reference:
            problem = model_problem(reference)
            if problem:
                problems.append(f"{key}.{field}: {problem}")
        other = getattr(stage_config, "other_languages", None)
        if other is not None and (problem := model_problem(other.model)):
            problems.append(f"{key}.other_languages.model: {problem}")
    return problems + _turn_detector_problems(name, profile.turn_detector)


def _turn_detector_problems(name: str, detector: object) -> list[str]:
    """The semantic end of turn's model files: Smart Turn (audio), a GGUF (text)."""
    backend = getattr(detector, "backend", "none")
    references = []
    if "smart-turn" in backend:
        references.append(("model", detector.model))  # type: ignore[attr-defined]
    if "text" in backend:
        references.append(("text_model", detector.text_model))  # type: ignore[attr-defined]
    problems = []
    for field, reference in references:
        problem = model_problem(reference)
        if problem:
            problems.append(f"profiles.{name}.turn_detector.{field}: {problem}")
    return problems


def model_problem(reference: str) -> str | None:
    """None if the model can be loaded from here, else what is wrong and what to do."""
    if is_packaged(reference):
        return packaged_problem(reference)
    looks_like_path = reference.startswith(("/", "./", "../", "~")) or reference.endswith(
        (".gguf", ".onnx", ".bin")
    )
    if looks_like_path and not Path(reference).expanduser().exists():
        return f"model file '{reference}' does not exist"
    return None


def resolve_model(reference: str) -> str:
    """The path or hub name a backend hands to its library."""
    if is_packaged(reference):
        return str(resolve_packaged(reference))
    return str(Path(reference).expanduser()) if reference.startswith("~") else reference


def _which(program: str) -> bool:
    import shutil

    return shutil.which(program) is not None
