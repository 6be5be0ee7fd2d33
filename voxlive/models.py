"""Loading a profile's models, or saying in config terms why they cannot load.

Why a module of its own: `voxlive serve`, `voxlive local` and every benchmark load models
the same way, and the benchmarks are imported by the command line; with this here, the
command line, the daemon and the benchmarks all import it and none imports another.
"""

from __future__ import annotations

from voxlive.backends.base import BackendError
from voxlive.backends.loader import Models, load_models
from voxlive.config import ConfigError, VoxliveConfig, check_profile


def load_or_explain(config: VoxliveConfig, profile_name: str | None) -> tuple[str, Models]:
    """Check the profile, then load its models with a progress bar.

    Returns the profile's name (the default when `profile_name` is None) and its models;
    a problem in models.yaml or a backend that cannot load raises ConfigError.
    """
    name = profile_name or config.default_profile
    problems = check_profile(config, name)
    if problems:
        raise ConfigError("models.yaml", problems)
    try:
        return name, load_models(config.profile(name))
    except BackendError as exc:
        raise ConfigError("models.yaml", [f"profiles.{name}.{exc.stage}: {exc.message}"]) from None
