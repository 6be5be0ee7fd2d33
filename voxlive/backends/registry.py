"""The backend registry: every model backend declares itself once, in its own module.

A backend module (``voxlive/backends/<stage>_<name>.py``, ``voxlive/vision/*_backend.py``,
``voxlive/emotion/*_backend.py``) ends with one declaration:

    BACKEND = Backend(
        stage="tts", name="piper", config=PiperTts, factory=PiperTTS,
        package="piper", install="pip install 'voxlive[piper]'  (piper-tts is GPL-3.0)",
        model_field="voice",
    )

and everything else reads it: the models.yaml schema (voxlive/config/schema.py) builds each
stage's `backend:` choices from the configs declared here, `check_profile`
(voxlive/config/checks.py) reports a missing package with its install hint, a missing
program or model file, and the loader (voxlive/backends/loader.py) calls the factory. So a
new backend is one new file: nothing else to edit.

Why the modules are found rather than listed: a list in one place is the fourth file every
backend had to touch. A module is a backend when its source assigns `BACKEND = ` at the
top level; finding that needs no import, so helpers in the same folders (tts_stream.py,
llm_process.py, which import voxlive.config) are never imported here.

Two rules follow from the schema being built from these modules, when voxlive.config is
imported: a backend module imports its heavy libraries (torch, openai, llama_cpp) inside
its factory, not at the top, and it does not import voxlive.config at the top (that would
be a cycle: the config is being built from it). Its config model derives from `Strict`
below, and it resolves model references with voxlive.backends.packaged.resolve_model.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

Stage = Literal["vad", "stt", "llm", "tts", "vision", "emotion"]
STAGES: tuple[Stage, ...] = typing.get_args(Stage)
"""The stages a profile names a backend for, in the order they load."""

PACKAGES = ("voxlive.backends", "voxlive.vision", "voxlive.emotion")
"""Where backend modules live."""

_DECLARES = re.compile(r"^BACKEND\s*(:[^=\n]*)?=", re.MULTILINE)


class Strict(BaseModel):
    """A section of models.yaml: unknown keys are errors (a misspelt key is never ignored)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


@dataclass(frozen=True)
class Backend:
    """What one backend declares.

    stage, name: where it serves and its `backend:` value in models.yaml.
    config: its section of models.yaml (a Strict model with `backend: Literal[name]`).
    factory: config -> the loaded backend; it imports the heavy libraries itself.
    package: the Python module it needs ("" for none) and `install`, how to get it (the
        extra to install); `program`: a program it runs, checked on the PATH.
    model_field: the config field naming a model this machine must have (a path or a
        pip: package); None when the model lives elsewhere (a server's model name).
    other_models: config -> {key: reference} of further models it loads (checked alike).
    """

    stage: Stage
    name: str
    config: type[Strict]
    factory: Callable[[Any], Any]
    package: str = ""
    install: str = ""
    program: str = ""
    model_field: str | None = "model"
    other_models: Callable[[Any], dict[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"backend {self.name!r}: unknown stage {self.stage!r}")
        field = self.config.model_fields.get("backend")
        if field is None or typing.get_args(field.annotation) != (self.name,):
            raise ValueError(
                f"backend {self.name!r}: {self.config.__name__}.backend must be "
                f"Literal[{self.name!r}]"
            )
        if self.model_field is not None and self.model_field not in self.config.model_fields:
            raise ValueError(f"backend {self.name!r}: {self.config.__name__} has no field "
                             f"{self.model_field!r}")


def declaring_modules(packages: Iterable[str] = PACKAGES) -> list[str]:
    """The modules of these packages whose source declares a BACKEND, sorted by name."""
    found = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).glob("*.py")):
                if _DECLARES.search(path.read_text(encoding="utf-8")):
                    found.append(f"{package}.{path.stem}")
    return sorted(found)


def discover(packages: Iterable[str] = PACKAGES) -> list[Backend]:
    """Import every declaring module and collect its BACKEND, with clear errors for a
    malformed declaration or two backends of one name in a stage."""
    backends: list[Backend] = []
    for name in declaring_modules(packages):
        module = importlib.import_module(name)
        backend = getattr(module, "BACKEND", None)
        if not isinstance(backend, Backend):
            raise ImportError(
                f"{name} declares BACKEND but it is not a Backend once imported (a module "
                "that imports voxlive.config at its top is imported half-way: a cycle)"
            )
        if any((b.stage, b.name) == (backend.stage, backend.name) for b in backends):
            raise ImportError(f"two {backend.stage} backends are named {backend.name!r}")
        backends.append(backend)
    return backends


@cache
def all_backends() -> tuple[Backend, ...]:
    """Every backend voxlive ships, found once per process (in the PACKAGES of then)."""
    return tuple(discover(PACKAGES))


def backends_of(stage: Stage) -> list[Backend]:
    return [b for b in all_backends() if b.stage == stage]


def backend(stage: str, name: str) -> Backend:
    """The backend a profile names (the schema has already refused unknown names)."""
    for candidate in all_backends():
        if (candidate.stage, candidate.name) == (stage, name):
            return candidate
    known = ", ".join(b.name for b in all_backends() if b.stage == stage)
    raise KeyError(f"no {stage} backend named {name!r} (known: {known})")


def names() -> set[str]:
    """Every backend name of every stage."""
    return {b.name for b in all_backends()}


def config_union(backends: Iterable[Backend]) -> Any:
    """The pydantic type of a stage's section: its backends' configs, told apart by the
    `backend` key."""
    configs = tuple(b.config for b in backends)
    if not configs:
        raise ValueError("a stage without any backend")
    return Annotated[Union[configs], Field(discriminator="backend")]  # noqa: UP007
