"""What every vision backend returns, and the protocol it follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class SceneDescription:
    """One frame, described.

    caption: one or two short sentences for the LLM's context.
    labels: the top labels with their scores, best first.
    backend: which backend made it (its `description`).
    details: backend-specific numbers (face boxes, colour shares, every label's score...).
    """

    caption: str
    labels: list[tuple[str, float]]
    backend: str
    details: dict[str, Any] = field(default_factory=dict)


class Vision(Protocol):
    description: str

    def describe(self, image: np.ndarray) -> SceneDescription:
        """Describe an HxWx3 uint8 RGB frame. Blocking: the runtime calls it in a worker thread."""
        ...


def as_rgb(image: np.ndarray) -> np.ndarray:
    """The frame as a contiguous HxWx3 uint8 array (an alpha channel is dropped)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image scaled down (never up) so that its longer side is at most max_side."""
    import cv2

    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def thumbnail_jpeg(image: np.ndarray, max_side: int = 160, quality: int = 80) -> bytes:
    """A small JPEG of an RGB frame, for the UI's "what the assistant saw" event."""
    import cv2

    small = shrink(as_rgb(image), max_side)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("cv2.imencode could not encode the thumbnail")
    return buf.tobytes()
