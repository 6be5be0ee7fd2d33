"""The machine's own camera (OpenCV VideoCapture) as a call's video, for `voxlive local`.

A call's camera track delivers frames that the session keeps by reference and decodes
only when it looks (voxlive.vision.frames.LatestFrame). Here the same path is fed with
one `CameraFrame` per opened camera, whose `to_ndarray()` asks the camera thread for a
fresh picture: nothing is decoded or converted until the assistant looks.

Why a thread: VideoCapture blocks (a webcam's `grab()` waits for the next frame, opening
one can take a second) and is not safe to use from several threads, so one thread owns
it. It keeps calling `grab()` at a modest pace, which keeps the driver's queue drained
(the next picture is current, not the one from a minute ago) and costs little: the
frame is decoded (`retrieve()`) only when one was asked for.

A camera that does not open, or stops giving frames (unplugged, taken by another
program, the end of a video file), is reported through `on_problem` and reopened with
backoff for as long as the session runs; a look meanwhile fails with an error the
session reports (stage "vision"), after at most `snapshot_timeout_s`: never a hang.

OpenCV (the `vision` extra) is imported when the camera starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
"""Waits before reopening a camera; the last repeats for as long as the session runs."""
GRAB_INTERVAL_S = 1 / 30
FAILED_GRABS = 5
"""Grabs in a row that fail before the camera counts as lost."""
SNAPSHOT_TIMEOUT_S = 3.0


class CameraUnavailable(RuntimeError):
    """No picture from the camera right now (not open, lost, or too slow)."""


class CameraFrame:
    """A stand-in for a video frame: decoded from the camera when the session looks."""

    def __init__(self, camera: LocalCamera):
        self.camera = camera

    def to_ndarray(self, format: str = "rgb24") -> np.ndarray:  # noqa: A002 - av's name
        if format != "rgb24":
            raise ValueError(f"the local camera gives rgb24 pictures, not {format}")
        return self.camera.snapshot()


class LocalCamera:
    """Owns one VideoCapture in a thread; `snapshot()` gives a fresh RGB picture.

    `source`: a camera index (0: the first) or a path/URL OpenCV opens (the tests use
    a video file). `on_open(frame)` is called (from the camera thread) each time the
    camera opens, with the CameraFrame to hand to `session.on_camera_frame`;
    `on_problem(text)` when it cannot be opened or is lost, before each retry.
    """

    def __init__(self, source: int | str = 0, *,
                 on_open: Callable[[CameraFrame], None] | None = None,
                 on_problem: Callable[[str], None] | None = None,
                 retry_delays: Sequence[float] = RETRY_DELAYS_S,
                 grab_interval_s: float = GRAB_INTERVAL_S,
                 snapshot_timeout_s: float = SNAPSHOT_TIMEOUT_S):
        self.source = source
        self.on_open = on_open
        self.on_problem = on_problem
        self.retry_delays = tuple(retry_delays) or (1.0,)
        self.grab_interval_s = grab_interval_s
        self.snapshot_timeout_s = snapshot_timeout_s
        self.frame = CameraFrame(self)
        self.opened = 0  # times the camera opened
        self.problems: list[str] = []
        self.grabbed = 0
        self.grabbed_since_open = 0
        self.is_open = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[tuple[threading.Event, list[Any]]] = []
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"camera #{self.source}" if isinstance(self.source, int) else str(self.source)

    def start(self) -> None:
        """Start the camera thread (it opens the camera); returns at once."""
        import cv2  # noqa: F401 - fail here, not in the thread, if OpenCV is missing

        self._thread = threading.Thread(target=self._run, name="voxlive-camera", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the thread and release the camera (a thread stuck in a driver is left
        behind: it is a daemon and holds up nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._answer_all(CameraUnavailable(f"{self.name} is closed"))

    def snapshot(self, timeout: float | None = None) -> np.ndarray:
        """A fresh HxWx3 uint8 RGB picture (blocks up to `timeout`: call it from a worker
        thread, as the vision path does); CameraUnavailable if there is none."""
        if not self.is_open:
            raise CameraUnavailable(f"{self.name} is not available")
        done = threading.Event()
        answer: list[Any] = []
        with self._lock:
            self._requests.append((done, answer))
        wait = self.snapshot_timeout_s if timeout is None else timeout
        if not done.wait(wait):
            with self._lock:
                if (done, answer) in self._requests:
                    self._requests.remove((done, answer))
            raise CameraUnavailable(f"{self.name} gave no picture within {wait:g} s")
        if isinstance(answer[0], BaseException):
            raise answer[0]
        return answer[0]

    # --- the camera thread --------------------------------------------------------------

    def _run(self) -> None:
        import cv2

        failures = 0  # opens in a row that failed or were lost
        while not self._stop.is_set():
            self.grabbed_since_open = 0
            capture = cv2.VideoCapture(self.source)
            problem = self._use(capture, cv2) if capture.isOpened() else (
                f"{self.name} could not be opened")
            capture.release()
            self.is_open = False
            if self._stop.is_set():
                break
            self._answer_all(CameraUnavailable(problem))
            if self.grabbed_since_open > 100:  # it worked for a while: back to short waits
                failures = 0
            delay = self.retry_delays[min(failures, len(self.retry_delays) - 1)]
            failures += 1
            self._report(f"{problem}; trying again in {delay:g} s")
            self._stop.wait(delay)

    def _use(self, capture: Any, cv2: Any) -> str:
        """Grab from an open camera until it fails or we stop; returns what went wrong."""
        self.is_open = True
        self.opened += 1
        if self.on_open is not None:
            try:
                self.on_open(self.frame)
            except Exception:
                log.exception("the camera's on_open callback failed")
        failed = 0
        while not self._stop.is_set():
            if not capture.grab():
                failed += 1
                if failed >= FAILED_GRABS:
                    return f"{self.name} stopped giving pictures"
                self._stop.wait(self.grab_interval_s)
                continue
            failed = 0
            self.grabbed += 1
            self.grabbed_since_open += 1
            if self._requests:
                ok, bgr = capture.retrieve()
                if ok and bgr is not None:
                    self._answer_all(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            self._stop.wait(self.grab_interval_s)
        return "stopped"

    def _answer_all(self, answer: Any) -> None:
        with self._lock:
            requests, self._requests = self._requests, []
        for done, slot in requests:
            slot.append(answer)
            done.set()

    def _report(self, text: str) -> None:
        self.problems.append(text)
        log.warning("%s", text)
        if self.on_problem is not None:
            try:
                self.on_problem(text)
            except Exception:
                log.exception("the camera's on_problem callback failed")
