"""Which sound devices there are, which one the user means, and what format it takes.

Device discovery for `voxlive local` (voxlive.transports.local), apart from the
streams: `--list-devices`, `--input-device NAME` and the rate/channel negotiation run
before any stream opens, and a reopen after a lost device starts here again.

sounddevice is imported on first use, so that voxlive runs without it (the `local`
extra) and without PortAudio (the libportaudio2 Debian package).
"""

from __future__ import annotations

import contextlib
from typing import Any


class AudioUnavailable(RuntimeError):
    """Local audio cannot work here as configured: no sounddevice or PortAudio, no such
    device. The message says what to do; retrying does not help."""


class DeviceLost(RuntimeError):
    """A stream could not be opened, or stopped or stalled while running: worth reopening."""


class SessionFailed(RuntimeError):
    """Feeding the microphone into the session raised; the session is in doubt."""


def sounddevice() -> Any:
    """The sounddevice module, or AudioUnavailable saying what to install."""
    try:
        import sounddevice as sd
    except ModuleNotFoundError:
        raise AudioUnavailable(
            "the local mode needs the sounddevice package: pip install 'voxlive[local]'"
        ) from None
    except OSError as exc:  # sounddevice loads libportaudio when imported
        raise AudioUnavailable(
            f"PortAudio is missing ({exc}): install the libportaudio2 package "
            "(scripts/install-audio-deps.sh does)"
        ) from None
    return sd


def reinitialize_portaudio() -> None:
    """Let PortAudio enumerate the devices afresh (a replugged USB headset gets a new
    index). Only call it while no stream is open."""
    sd = sounddevice()
    with contextlib.suppress(Exception):
        sd._terminate()
    sd._initialize()


def list_devices() -> str:
    """The audio devices PortAudio sees, marked `>` default input, `<` default output."""
    sd = sounddevice()
    devices = sd.query_devices()
    if not len(devices):
        return ("no audio devices: PortAudio found no sound card (is PulseAudio/PipeWire "
                "running for this user, or are you in a container without /dev/snd?)")
    default_in, default_out = _default_devices(sd)
    apis = sd.query_hostapis()
    lines = ["audio devices (pick one with --input-device/--output-device INDEX or NAME):"]
    for index, device in enumerate(devices):
        mark = (">" if index == default_in else " ") + ("<" if index == default_out else " ")
        api = apis[device["hostapi"]]["name"]
        lines.append(
            f"{mark}{index:3d} {device['name']} ({api}; {device['max_input_channels']} in, "
            f"{device['max_output_channels']} out; {device['default_samplerate']:.0f} Hz)"
        )
    lines.append("> default input, < default output")
    return "\n".join(lines)


def _default_devices(sd: Any) -> tuple[int, int]:
    default_in, default_out = sd.default.device
    return int(default_in), int(default_out)


def find_device(spec: str | int | None, kind: str) -> int:
    """A device index for `kind` ("input" or "output"): the default for None, else an
    index or a case-insensitive name substring (an exact name wins over substrings)."""
    sd = sounddevice()
    devices = sd.query_devices()
    channels = f"max_{kind}_channels"
    if spec is None or spec == "":
        default = _default_devices(sd)[0 if kind == "input" else 1]
        if default < 0 or default >= len(devices):
            raise AudioUnavailable(f"there is no default {kind} device; "
                                   f"`voxlive local --list-devices` shows the devices")
        return default
    if isinstance(spec, int) or str(spec).strip().isdigit():
        index = int(spec)
        if not 0 <= index < len(devices):
            raise AudioUnavailable(f"no audio device #{index} (there are {len(devices)}); "
                                   "`voxlive local --list-devices` shows them")
        if devices[index][channels] < 1:
            raise AudioUnavailable(f"device #{index} ({devices[index]['name']}) has no {kind}")
        return index
    wanted = str(spec).lower()
    usable = [(i, d["name"]) for i, d in enumerate(devices) if d[channels] > 0]
    exact = [i for i, name in usable if name.lower() == wanted]
    if exact:
        return exact[0]
    matches = [(i, name) for i, name in usable if wanted in name.lower()]
    if len(matches) == 1:
        return matches[0][0]
    if not matches:
        names = ", ".join(f"#{i} {name}" for i, name in usable) or "none"
        raise AudioUnavailable(f"no {kind} device matches {spec!r}; {kind} devices: {names}")
    names = ", ".join(f"#{i} {name}" for i, name in matches)
    raise AudioUnavailable(f"{spec!r} matches several {kind} devices ({names}): "
                           "give more of the name, or the index")


def stream_format(sd: Any, device: int, kind: str, preferred: int) -> tuple[int, int]:
    """(rate, channels) the device accepts: `preferred` if it can, else its default rate;
    mono if it can, else the fewest channels it has (mixed down or duplicated here)."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    info = sd.query_devices(device)
    rates = [preferred, int(info["default_samplerate"])]
    for channels in (1, min(2, int(info[f"max_{kind}_channels"]))):
        for rate in rates:
            try:
                check(device=device, samplerate=rate, channels=channels, dtype="float32")
            except Exception:
                continue
            return rate, channels
    raise DeviceLost(f"{kind} device {info['name']!r} accepts neither {preferred} Hz "
                     f"nor {rates[1]} Hz float32 audio")
