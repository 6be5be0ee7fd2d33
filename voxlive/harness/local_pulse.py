"""A private PulseAudio server with virtual devices, for testing and benchmarking
`voxlive local` for real (tests/test_local.py, `voxlive bench local`).

    vox_in   a null sink: the test plays speech into it (paplay -d vox_in); its monitor,
             vox_in.monitor, is the default source: the "microphone"
    vox_out  a null sink, the default sink: the "speaker"; the test records its monitor
             (parecord -d vox_out.monitor)

PortAudio reaches the server through ALSA's "pulse" device (libasound2-plugins, see
scripts/install-audio-deps.sh) with PULSE_SERVER pointing at this server's socket. The
server, its socket, cookie and state live in a temporary directory; a client config
with autospawn off keeps libpulse from ever starting or touching a real sound setup.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")
CLIENT_ENV = ("PULSE_SERVER", "PULSE_COOKIE", "PULSE_CLIENTCONFIG")
SCRIPT = """\
load-module module-native-protocol-unix socket={socket} auth-anonymous=1
load-module module-cli-protocol-unix socket={cli}
load-module module-null-sink sink_name=vox_out rate=48000 channels=1 \
sink_properties=device.description=voxlive-speaker
load-module module-null-sink sink_name=vox_in rate=48000 channels=1 \
sink_properties=device.description=voxlive-microphone
set-default-sink vox_out
set-default-source vox_in.monitor
"""



def end_process(process: subprocess.Popen) -> None:
    """Terminate a helper program, killing it if it does not go within 5 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)

class PulseUnavailable(RuntimeError):
    """The audio server cannot run here; the message says why."""


def missing_packages() -> list[str]:
    missing = [f"{tool} (pulseaudio/pulseaudio-utils)" for tool in TOOLS
               if shutil.which(tool) is None]
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so") and not glob.glob(
            "/usr/lib*/alsa-lib/libasound_module_pcm_pulse.so"):
        missing.append("the ALSA pulse plugin (libasound2-plugins)")
    return missing


class PulseServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="voxlive-pulse-"))
        self.socket = self.dir / "run" / "native"
        self.cli_socket = self.dir / "run" / "cli"
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self._saved: dict[str, str | None] = {}

    def start(self, timeout_s: float = 10.0) -> None:
        missing = missing_packages()
        if missing:
            self.stop()
            raise PulseUnavailable("missing: " + ", ".join(missing)
                                   + " (scripts/install-audio-deps.sh installs them)")
        for sub in ("run", "home", "config", "state"):
            (self.dir / sub).mkdir(mode=0o700)
        (self.dir / "default.pa").write_text(SCRIPT.format(socket=self.socket,
                                                              cli=self.cli_socket))
        (self.dir / "client.conf").write_text("autospawn = no\n")
        client = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_COOKIE": str(self.dir / "cookie"),
            "PULSE_CLIENTCONFIG": str(self.dir / "client.conf"),
        }
        self.env = {**os.environ, **client, "HOME": str(self.dir / "home"),
                    "XDG_RUNTIME_DIR": str(self.dir / "run"),
                    "XDG_CONFIG_HOME": str(self.dir / "config"),
                    "PULSE_RUNTIME_PATH": str(self.dir / "run"),
                    "PULSE_STATE_PATH": str(self.dir / "state")}
        self.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        log = open(self.dir / "pulseaudio.log", "wb")  # noqa: SIM115 - the server's lifetime
        try:
            self.process = subprocess.Popen(
                ["pulseaudio", "-n", "-F", str(self.dir / "default.pa"), "--daemonize=no",
                 "--exit-idle-time=-1", "--use-pid-file=no", "--system=no", "--realtime=yes",
                 "--high-priority=yes", "--disallow-exit", "--log-target=stderr",
                 "--log-level=error"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            self.stop()
            raise PulseUnavailable(f"pulseaudio could not be started: {exc}") from exc
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise PulseUnavailable(
                    f"pulseaudio exited with status {self.process.returncode}: {self.log_tail()}")
            if self.socket.exists() and self.pactl("info", check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise PulseUnavailable(f"pulseaudio did not answer in {timeout_s:g} s: "
                                       f"{self.log_tail()}")
            time.sleep(0.05)
        for name, value in client.items():  # for PortAudio (the ALSA plugin) in-process
            self._saved[name] = os.environ.get(name)
            os.environ[name] = value

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "pulseaudio.log").read_text(errors="replace")[-800:].strip()
        return ""

    def stop(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()
        if self.process is not None:
            end_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- control --------------------------------------------------------------------

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              timeout=10, check=check)

    def clients(self, kind: str) -> list[dict]:
        """`sink-inputs` or `source-outputs`, as pactl's JSON."""
        return json.loads(self.pactl("-f", "json", "list", kind).stdout or "[]")

    def loopback(self, source: str, sink: str, latency_ms: int, gain: float) -> str:
        """Route `source` into `sink` (a speaker heard by the microphone); the module id."""
        module = self.pactl("load-module", "module-loopback", f"source={source}",
                            f"sink={sink}", f"latency_msec={latency_ms}",
                            "source_dont_move=true", "sink_dont_move=true").stdout.strip()
        for _ in range(50):
            inputs = [i for i in self.clients("sink-inputs") if i.get("owner_module") == module]
            if inputs:
                self.pactl("set-sink-input-volume", str(inputs[0]["index"]), f"{gain:g}")
                return module
            time.sleep(0.02)
        raise RuntimeError("the loopback's sink input did not appear")

    def kill(self, kind: str, index: int) -> None:
        """Drop a client's stream (`sink-input` or `source-output`), as the server does
        when the device under it goes away (pactl cannot; the CLI protocol can)."""
        with socket.socket(socket.AF_UNIX) as cli:
            cli.settimeout(2)
            cli.connect(str(self.cli_socket))
            cli.sendall(f"kill-{kind} {index}\n".encode())
            with contextlib.suppress(TimeoutError):
                cli.recv(4096)  # a prompt, or an error message

    def unload(self, module: str) -> None:
        self.pactl("unload-module", module, check=False)

    async def play(self, wav: str, sink: str = "vox_in") -> None:
        """Play a WAV file into `sink`, until it has been played."""
        process = await asyncio.create_subprocess_exec(
            "paplay", "-d", sink, "--latency-msec=40", wav, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), 60)
        if process.returncode:
            raise RuntimeError(f"paplay failed: {err.decode(errors='replace')}")

    def record(self, source: str = "vox_out.monitor") -> Recording:
        return Recording(self, source)


class Recording:
    """parecord of a source, as 16 kHz float32 mono. Its first samples come a second or
    more after it is started, so a moment in it is found by its length then, not by the
    clock."""

    RATE = 16_000

    def __init__(self, server: PulseServer, source: str):
        self.path = server.dir / f"record-{time.monotonic_ns()}.raw"
        self.process = subprocess.Popen(
            ["parecord", "-d", source, f"--rate={self.RATE}", "--channels=1",
             "--format=float32le", "--raw", "--latency-msec=20", str(self.path)],
            env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def samples(self) -> np.ndarray:
        """What was recorded so far (the file grows while it records)."""
        with contextlib.suppress(FileNotFoundError):
            data = self.path.read_bytes()
            return np.frombuffer(data[: len(data) // 4 * 4], dtype=np.float32)
        return np.zeros(0, dtype=np.float32)

    def stop(self) -> np.ndarray:
        end_process(self.process)
        return self.samples()
