"""The call's latest camera frame, kept by reference: nothing is decoded until it is used."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class LatestFrame:
    def __init__(self) -> None:
        self._frame: Any = None  # an av.VideoFrame (or anything with to_ndarray)
        self.received_at: float | None = None
        self.frames = 0

    def update(self, frame: Any) -> None:
        self._frame = frame
        self.received_at = time.monotonic()
        self.frames += 1

    @property
    def available(self) -> bool:
        return self._frame is not None

    def rgb(self) -> np.ndarray | None:
        """The latest frame as HxWx3 uint8 RGB (decoded now, in the caller's thread)."""
        frame = self._frame
        if frame is None:
            return None
        if isinstance(frame, np.ndarray):
            return frame
        return frame.to_ndarray(format="rgb24")
