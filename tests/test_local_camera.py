"""The local camera (voxlive.transports.local_camera) for real: OpenCV's VideoCapture on a
video file written here with VideoWriter (no virtual camera device can be made without
root and a kernel module), and a LocalCall whose session looks through it with the
embedded vision stage."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxlive.backends.loader import Models
from voxlive.config import VoxliveConfig
from voxlive.local_cli import LocalCall
from voxlive.transports.local_camera import CameraUnavailable, LocalCamera
from voxlive.transports.terminal import TranscriptPrinter

cv2 = pytest.importorskip("cv2")

SIZE = (160, 120)


def write_video(path: Path, frames: int, colour_rgb: tuple[int, int, int]) -> Path:
    """A short MJPEG video of a flat colour with a frame counter stripe."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    assert writer.isOpened()
    for index in range(frames):
        image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        image[:] = colour_rgb[::-1]  # BGR
        image[: 8, : 4 * (index + 1)] = 255
        writer.write(image)
    writer.release()
    return path


def test_pictures_come_on_demand_in_rgb(tmp_path: Path) -> None:
    video = write_video(tmp_path / "red.avi", 300, (200, 30, 30))
    opened: list[Any] = []
    camera = LocalCamera(str(video), on_open=opened.append, grab_interval_s=0.01)
    camera.start()
    try:
        deadline = time.monotonic() + 10
        while not camera.is_open and time.monotonic() < deadline:
            time.sleep(0.02)
        picture = camera.snapshot()
        assert picture.shape == (SIZE[1], SIZE[0], 3) and picture.dtype == np.uint8
        red, green, blue = picture[60, 80].astype(int)
        assert red > 150 and green < 80 and blue < 80, picture[60, 80]  # RGB, not BGR
        assert opened == [camera.frame]
        assert np.array_equal(camera.frame.to_ndarray(format="rgb24").shape, picture.shape)
    finally:
        camera.stop()
    with pytest.raises(CameraUnavailable):
        camera.snapshot()


def test_a_lost_camera_is_reported_and_reopened(tmp_path: Path) -> None:
    """A video file ends, as an unplugged camera stops: reported, then opened again."""
    video = write_video(tmp_path / "short.avi", 5, (30, 200, 30))
    problems: list[str] = []
    camera = LocalCamera(str(video), on_problem=problems.append, retry_delays=(0.1,),
                         grab_interval_s=0.01)
    camera.start()
    try:
        deadline = time.monotonic() + 10
        while camera.opened < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        camera.stop()
    assert camera.opened >= 2, problems
    assert problems and "stopped giving pictures; trying again in 0.1 s" in problems[0]


def test_a_camera_that_is_not_there_is_reported_and_retried_never_hangs(
        tmp_path: Path) -> None:
    problems: list[str] = []
    camera = LocalCamera(str(tmp_path / "no-such-camera.avi"), on_problem=problems.append,
                         retry_delays=(0.05,))
    camera.start()
    try:
        deadline = time.monotonic() + 10
        while len(problems) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        started = time.monotonic()
        with pytest.raises(CameraUnavailable):
            camera.snapshot(timeout=1.0)
        assert time.monotonic() - started < 1.5
    finally:
        camera.stop()
    assert len(problems) >= 2 and "could not be opened" in problems[0]


async def test_voxlive_local_looks_through_the_camera(
        tmp_path: Path, config: VoxliveConfig, embedded_models: Models) -> None:
    """The camera feeds the same path as a call's video: the session looks at call start
    (look.at_call_start) with the profile's vision stage and emits a `vision` event.
    The audio side is tested in test_local.py; here only the camera is opened."""
    if embedded_models.vision is None:
        pytest.skip("the embedded profile has no vision stage")
    video = write_video(tmp_path / "scene.avi", 600, (230, 230, 230))
    looking = config.model_copy(update={"look": config.look.model_copy(
        update={"at_call_start": True})})
    events: list[dict[str, Any]] = []
    printed = io.StringIO()
    call = LocalCall(embedded_models, looking, 0.5,
                     printer=TranscriptPrinter(printed, color=False), on_event=events.append,
                     camera=str(video), camera_options={"grab_interval_s": 0.01})
    session = call._new_session()
    call._start_camera()
    try:
        deadline = time.monotonic() + 30
        while not any(e["type"] in ("vision", "error") for e in events):
            assert time.monotonic() < deadline, (events, printed.getvalue())
            await asyncio.sleep(0.05)
    finally:
        assert call.local_camera is not None
        await asyncio.get_running_loop().run_in_executor(None, call.local_camera.stop)
        await session.close()
    seen = next(e for e in events if e["type"] in ("vision", "error"))
    assert seen["type"] == "vision", seen
    assert seen["reason"] == "call_start" and seen["backend"] and seen["thumbnail"]
    assert "looking through" in printed.getvalue()
