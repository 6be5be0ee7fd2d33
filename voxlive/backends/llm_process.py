"""`voxlive serve --spawn-llm`: vLLM as a subprocess that voxlive starts and stops.

Why: one command brings up the whole GPU stack, and no vLLM server outlives the daemon.
The command is `vllm serve MODEL --host HOST --port PORT [llm.spawn_args...]`, host and
port taken from llm.base_url, so the daemon's `openai` backend finds the server where
models.yaml says it is. $VOXLIVE_VLLM_COMMAND replaces `vllm serve` (split like a shell
line: a virtual environment's vllm, a wrapper script, or the test double of vLLM).

The process gets its own process group (session): Ctrl-C on the terminal then reaches
only voxlive, which stops vLLM in order, and stopping signals the whole group, so the
engine processes vLLM starts go too: SIGTERM, then SIGKILL after a grace period. Its
output (stdout and stderr) is logged line by line with a "vllm| " prefix, and the last
lines are kept for the error when it dies while starting. Health is GET /health at the
server's root (base_url without /v1), polled until it answers 200, with a progress line
on a terminal: loading an 8B model takes a minute or more.

Everything here is blocking and runs before the daemon's event loop starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from voxlive.config import OpenAILlm, VoxliveConfig
from voxlive.server.auth import is_loopback_host

log = logging.getLogger(__name__)

VLLM_COMMAND_ENV = "VOXLIVE_VLLM_COMMAND"
DEFAULT_COMMAND = ("vllm", "serve")
LOG_PREFIX = "vllm| "
TAIL_LINES = 30
POLL_INTERVAL_S = 0.5
GRACE_S = 15.0  # vLLM frees GPU memory and stops its engine processes in a few seconds


class SpawnError(RuntimeError):
    """--spawn-llm cannot be used, or the server did not come up; str() is for the user."""


@dataclass(frozen=True)
class SpawnTarget:
    host: str
    port: int
    health_url: str


def spawn_target(config: OpenAILlm) -> SpawnTarget:
    """Where the spawned server must listen: llm.base_url, which must be on this machine."""
    parts = urlsplit(config.base_url)
    host = parts.hostname or ""
    if parts.scheme != "http":
        raise SpawnError(
            f"--spawn-llm starts a plain-http vLLM server, but llm.base_url is "
            f"{config.base_url!r}; use http://127.0.0.1:PORT/v1"
        )
    if not is_loopback_host(host):
        raise SpawnError(
            f"--spawn-llm starts vLLM on this machine, but llm.base_url ({config.base_url}) "
            f"points at the host '{host}'; set it to http://127.0.0.1:PORT/v1, or start vLLM "
            "on that host yourself and drop --spawn-llm"
        )
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise SpawnError(f"llm.base_url {config.base_url!r} has a bad port: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    return SpawnTarget(host, port, f"http://{shown}:{port}/health")



def vllm_command() -> list[str]:
    """`vllm serve`, or what $VOXLIVE_VLLM_COMMAND says instead."""
    override = os.environ.get(VLLM_COMMAND_ENV, "").strip()
    return shlex.split(override) if override else list(DEFAULT_COMMAND)


class LlmProcess:
    """A managed `vllm serve` process. Use as a context manager: entering starts it and
    waits until it is healthy (stopping it if that fails or is interrupted); leaving
    stops it."""

    def __init__(self, config: OpenAILlm, command: Sequence[str] | None = None, *,
                 progress: bool | None = None, grace_s: float = GRACE_S,
                 poll_interval_s: float = POLL_INTERVAL_S):
        self.config = config
        self.target = spawn_target(config)
        self.command = list(command) if command is not None else vllm_command()
        self.argv = [*self.command, config.model, "--host", self.target.host,
                     "--port", str(self.target.port), *config.spawn_args]
        self.progress = progress
        self.grace_s = grace_s
        self.poll_interval_s = poll_interval_s
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LlmProcess:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:  # a failure, a timeout or Ctrl-C: no server is left behind
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start the process; its log lines go to our logger from a reader thread."""
        if self.process is not None:
            raise RuntimeError("LlmProcess already started")
        self._refuse_busy_port()
        log.info("starting the LLM server: %s", shlex.join(self.argv))
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: see the module docstring
                text=True,
                errors="replace",
                bufsize=1,
            )
        except FileNotFoundError:
            raise SpawnError(
                f"cannot start the LLM server: the command '{self.argv[0]}' was not found; "
                f"install vLLM (pip install vllm) or set ${VLLM_COMMAND_ENV} to the command "
                "that replaces `vllm serve`"
            ) from None
        except OSError as exc:
            raise SpawnError(f"cannot start the LLM server ({self.argv[0]}): {exc}") from None
        self._reader = threading.Thread(target=self._read_log, name="vllm-log", daemon=True)
        self._reader.start()

    def wait_healthy(self, timeout_s: float | None = None) -> float:
        """Poll /health until it answers 200; returns the seconds it took. Raises
        SpawnError when the process exits first or the time runs out."""
        process = self._started()
        timeout = self.config.spawn_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        deadline = started + timeout
        show = sys.stderr.isatty() if self.progress is None else self.progress
        with _progress_line(show, f"starting vLLM ({self.config.model})") as update:
            while True:
                code = process.poll()
                if code is not None:
                    self._join_reader(1.0)  # the last lines explain the exit
                    raise SpawnError(
                        f"the LLM server exited with code {code} before it became healthy"
                        f"{self._tail_text()}"
                    )
                remaining = deadline - time.monotonic()
                if self._healthy(min(2.0, max(0.05, remaining))):
                    seconds = time.monotonic() - started
                    log.info("the LLM server is healthy at %s after %.1f s",
                             self.target.health_url, seconds)
                    return seconds
                if time.monotonic() >= deadline:
                    raise SpawnError(
                        f"the LLM server did not become healthy at {self.target.health_url} "
                        f"within {timeout:g} s (llm.spawn_timeout_s){self._tail_text()}"
                    )
                update(time.monotonic() - started, self.tail[-1] if self.tail else "")
                time.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after grace_s; returns when the group is
        gone. Safe to call more than once."""
        process = self.process
        if process is None:
            return
        group = process.pid  # start_new_session: the group's id is the leader's pid
        if _group_alive(group, process):
            log.info("stopping the LLM server (process group %d)", group)
            _signal_group(group, signal.SIGTERM)
            if not _wait_group(group, process, self.grace_s):
                log.warning("the LLM server did not stop within %g s: killing it",
                            self.grace_s)
                _signal_group(group, signal.SIGKILL)
                _wait_group(group, process, 5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5.0)
        self._join_reader(2.0)

    # --- details --------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _started(self) -> subprocess.Popen[str]:
        if self.process is None:
            raise RuntimeError("LlmProcess is not started")
        return self.process

    def _refuse_busy_port(self) -> None:
        """A server already there would pass our health check while ours fails to bind."""
        try:
            with socket.create_connection((self.target.host, self.target.port), timeout=0.5):
                pass
        except OSError:
            return
        raise SpawnError(
            f"something already listens at {self.target.host}:{self.target.port}; if it is "
            "a vLLM server, drop --spawn-llm to use it, else change llm.base_url's port"
        )

    def _healthy(self, timeout: float) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local: no proxy
        try:
            with opener.open(self.target.health_url, timeout=timeout) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _read_log(self) -> None:
        process = self.process
        if process is None or process.stdout is None:
            return
        for raw in process.stdout:
            line = raw.rstrip()
            if line:
                self.tail.append(line)
                log.info("%s%s", LOG_PREFIX, line)

    def _join_reader(self, timeout: float) -> None:
        if self._reader is not None:
            self._reader.join(timeout)

    def _tail_text(self) -> str:
        if not self.tail:
            return " (it logged nothing)"
        lines = "\n".join(f"  {LOG_PREFIX}{line}" for line in self.tail)
        return f"; its last log lines:\n{lines}"


@contextlib.contextmanager
def _progress_line(show: bool, desc: str) -> Iterator:
    """A one-line progress display (elapsed time and vLLM's latest log line) on a
    terminal; log records are routed around it so they do not break the line."""
    if not show:
        yield lambda elapsed, last: None
        return
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(), tqdm(desc=desc, bar_format="{desc}", file=sys.stderr) as bar:
        def update(elapsed: float, last: str) -> None:
            bar.set_description_str(f"{desc}: {elapsed:.0f} s | {last[-70:]}")

        yield update


def _group_members(group: int) -> list[int] | None:
    """Live (non-zombie) processes of a process group, from /proc; None without /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] not in ("Z", "X") and int(fields[2]) == group:
            members.append(int(entry))
    return members


def _group_alive(group: int, leader: subprocess.Popen[str]) -> bool:
    leader.poll()  # reap the leader, so a dead one is not counted as a zombie
    members = _group_members(group)
    if members is not None:
        return bool(members)
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _wait_group(group: int, leader: subprocess.Popen[str], timeout: float) -> bool:
    """True once no process of the group is left; False when the time runs out."""
    deadline = time.monotonic() + timeout
    while _group_alive(group, leader):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def spawned_llm(config: VoxliveConfig, profile_name: str | None) -> Iterator[LlmProcess]:
    """For `voxlive serve --spawn-llm`: the profile's vLLM server, healthy, for the block.

    SIGTERM (systemd's stop) is turned into SystemExit while the block runs, so the
    server is stopped then too; the daemon's own handler takes over while it serves.
    """
    name = profile_name or config.default_profile
    llm = config.profile(name).llm
    if not isinstance(llm, OpenAILlm):
        raise SpawnError(
            f"--spawn-llm starts a vLLM server for an `openai` LLM backend, but profile "
            f"'{name}' uses llm.backend '{llm.backend}'"
        )
    process = LlmProcess(llm)
    restore = _exit_on_sigterm()
    try:
        with process:
            yield process
    finally:
        restore()


def _exit_on_sigterm() -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)
