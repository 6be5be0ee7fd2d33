"""Finding models.yaml, reading it, and checking its shape, with errors the user can act on.

The first of the two steps of validation (the second, whether this machine can run a
profile, is checks.py). It needs nothing installed: an unknown backend, a wrong type or
an unknown key is reported with its key and what to do, every problem at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from voxlive.backends.registry import names
from voxlive.config.schema import ConfigError, VoxliveConfig

CONFIG_ENV = "VOXLIVE_CONFIG"
REPO_CONFIG = Path(__file__).resolve().parent.parent.parent / "models.yaml"


def find_config_file(explicit: str | os.PathLike | None = None) -> Path:
    """--config, then $VOXLIVE_CONFIG, then ./models.yaml, then the repository's models.yaml."""
    for candidate in (explicit, os.environ.get(CONFIG_ENV)):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise ConfigError(str(path), ["no such file"])
            return path
    for path in (Path.cwd() / "models.yaml", REPO_CONFIG):
        if path.is_file():
            return path
    raise ConfigError("models.yaml", ["not found; pass --config PATH or set VOXLIVE_CONFIG"])


def load_config(path: str | os.PathLike | None = None) -> VoxliveConfig:
    file = find_config_file(path)
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(file), [f"not valid YAML: {exc}"]) from None
    return parse_config(data, source=str(file))


def parse_config(data: Any, source: str = "models.yaml") -> VoxliveConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping (key: value) at the top"])
    try:
        return VoxliveConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(err) for err in exc.errors()]) from None


def _describe(err: dict[str, Any]) -> str:
    # pydantic puts the union tag in the location of union members; drop it for the user.
    loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
    key = ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return (
            f"{key}.backend: unknown backend {ctx.get('tag')!r}; "
            f"choose one of: {ctx.get('expected_tags')}"
        )
    if kind == "union_tag_not_found":
        return f"{key}: missing 'backend' key; say which backend runs this stage"
    if kind == "extra_forbidden":
        return f"{key}: unknown key (check its spelling against README's models.yaml section)"
    if kind == "missing":
        return f"{key}: required key is missing"
    if "_keys" in key:  # server.api_keys / metrics_keys: a key pasted in is never echoed
        return f"{key}: {err['msg']} (a source such as env:NAME or file:PATH, not the key)"
    return f"{key}: {err['msg']} (got {err.get('input')!r})"


def _is_union_tag(part: Any) -> bool:
    return part in names()
