"""Can this machine run a profile: the backends' Python packages, programs and model files.

The second step of validation, after loading.py has checked the file's shape: it looks
at what is installed here, so the CLI runs it just before it loads a profile's models,
and `voxlive doctor` reports it. What each backend needs is what it declared in the
registry (voxlive/backends/registry.py); where a model reference points is
voxlive/backends/packaged.py's `resolve_model`, beside `model_problem`, so that the
check and the loading agree.
"""

from __future__ import annotations

import importlib.util
import shutil

from voxlive.backends.packaged import model_problem, resolve_model
from voxlive.backends.registry import STAGES, Backend, backend
from voxlive.config.schema import Strict, TurnDetectorConfig, VoxliveConfig

__all__ = ["check_profile", "missing_package", "model_problem", "resolve_model"]


def check_profile(config: VoxliveConfig, profile_name: str | None = None) -> list[str]:
    """Problems that stop this profile from loading here: missing packages or model files."""
    name = profile_name or config.default_profile
    profile = config.profile(name)
    problems: list[str] = []
    for stage in STAGES:
        stage_config = getattr(profile, stage)
        if stage_config is None:
            continue  # an optional stage that this profile does not use
        problems += _backend_problems(backend(stage, stage_config.backend), stage_config,
                                      f"profiles.{name}.{stage}")
    return problems + _turn_detector_problems(name, profile.turn_detector)


def missing_package(declared: Backend) -> str | None:
    """What to say when the backend's Python package is not installed, else None."""
    if not declared.package or importlib.util.find_spec(declared.package) is not None:
        return None
    return (f"'{declared.name}' needs the Python package '{declared.package}', which is not "
            f"installed; install it with: {declared.install}")


def _backend_problems(declared: Backend, stage_config: Strict, key: str) -> list[str]:
    problems = []
    missing = missing_package(declared)
    if missing:
        problems.append(f"{key}.backend: {missing}")
    if declared.program and shutil.which(declared.program) is None:
        problems.append(f"{key}.backend: the {declared.program} program is missing; "
                        f"{declared.install}")
    references = {}
    if declared.model_field:
        references[declared.model_field] = getattr(stage_config, declared.model_field)
    if declared.other_models is not None:
        references.update(declared.other_models(stage_config))
    for field, reference in references.items():
        problem = model_problem(reference) if reference else None
        if problem:
            problems.append(f"{key}.{field}: {problem}")
    return problems


def _turn_detector_problems(name: str, detector: TurnDetectorConfig) -> list[str]:
    """The semantic end of turn's model files: Smart Turn (audio), a GGUF (text)."""
    references = []
    if "smart-turn" in detector.backend:
        references.append(("model", detector.model))
    if "text" in detector.backend:
        references.append(("text_model", detector.text_model))
    problems = []
    for field, reference in references:
        problem = model_problem(reference)
        if problem:
            problems.append(f"profiles.{name}.turn_detector.{field}: {problem}")
    return problems
