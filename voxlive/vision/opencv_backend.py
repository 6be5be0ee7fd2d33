"""Offline vision with only what OpenCV ships: faces, brightness and dominant colours.

No model download: the Haar face cascade comes inside the opencv-python(-headless) wheel
(OpenCV 4.x; OpenCV 5 dropped CascadeClassifier and its data files).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Literal

import numpy as np
from pydantic import Field

from voxlive.backends.registry import Backend, Strict
from voxlive.vision.base import SceneDescription, as_rgb, shrink

FACE_CASCADE = "haarcascade_frontalface_default.xml"
COLOUR_CLUSTERS = 4
COLOUR_SIDE = 64  # k-means runs on at most 64x64 pixels: plenty for dominant colours
MIN_COLOUR_SHARE = 0.12  # a colour below this share of the frame is not worth a mention
MAX_COLOURS = 3
# Mean luma (0..1) below which a scene is dark, and below which it is dim.
DARK_BELOW = 0.2
DIM_BELOW = 0.4

# Hue ranges in degrees (0..360), checked in order; red wraps around 0.
_HUES = [
    (12, "red"),
    (42, "orange"),
    (70, "yellow"),
    (160, "green"),
    (200, "cyan"),
    (260, "blue"),
    (290, "purple"),
    (345, "pink"),
    (360, "red"),
]



class OpenCVVision(Strict):
    backend: Literal["opencv"]
    max_side: int = Field(320, ge=64, description="frames are shrunk to this before analysis")


_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def colour_name(rgb: np.ndarray | tuple[float, float, float]) -> str:
    """A plain colour name for one RGB colour (0..255), via its hue, saturation and value."""
    r, g, b = (float(c) / 255.0 for c in rgb)
    value = max(r, g, b)
    chroma = value - min(r, g, b)
    saturation = chroma / value if value > 0 else 0.0
    if value < 0.2:
        return "black"
    if saturation < 0.2 or chroma < 0.08:
        if value > 0.75:
            return "white"
        return "grey" if value > 0.3 else "black"
    if value == r:
        hue = 60.0 * (((g - b) / chroma) % 6)
    elif value == g:
        hue = 60.0 * ((b - r) / chroma + 2)
    else:
        hue = 60.0 * ((r - g) / chroma + 4)
    name = next(n for upper, n in _HUES if hue < upper)
    # Dark reds and oranges read as brown (wood, coffee, hair, fur), not red or orange.
    if (hue < 42 or hue >= 345) and (value < 0.45 or (12 <= hue < 42 and value < 0.6)):
        return "brown"
    return name


def brightness_level(luma: float) -> str:
    if luma < DARK_BELOW:
        return "dark"
    if luma < DIM_BELOW:
        return "dim"
    return "bright"


def _count(n: int, noun: str) -> str:
    word = _NUMBERS[n] if n < len(_NUMBERS) else str(n)
    return f"{word} {noun}{'' if n == 1 else 's'}"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


class OpenCVVisionBackend:
    def __init__(self, config: OpenCVVision):
        import cv2

        self.config = config
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 dropped it): "
                "install opencv-python-headless<5"
            )
        path = os.path.join(cv2.data.haarcascades, FACE_CASCADE)
        self._faces = cv2.CascadeClassifier(path)
        if self._faces.empty():
            raise RuntimeError(f"could not load the OpenCV face cascade {path}")
        self.description = (
            f"opencv {cv2.__version__} (faces, brightness, colours; {config.max_side}px)"
        )
        # One instance serves every call; CascadeClassifier is not safe to share between
        # threads, and the seeded k-means must not interleave.
        self._lock = threading.Lock()

    def describe(self, image: np.ndarray) -> SceneDescription:
        import cv2

        start = time.perf_counter()
        image = as_rgb(image)
        height, width = image.shape[:2]
        small = shrink(image, self.config.max_side)
        scale = width / small.shape[1]
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        luma = float(gray.mean()) / 255.0

        with self._lock:
            faces = self._detect_faces(gray)
            colours = self._dominant_colours(small)

        boxes = [
            [round(x * scale), round(y * scale), round(w * scale), round(h * scale)]
            for x, y, w, h in faces
        ]
        level = brightness_level(luma)
        top = [(name, share) for name, share in colours if share >= MIN_COLOUR_SHARE][:MAX_COLOURS]
        top = top or colours[:1]

        labels: list[tuple[str, float]] = []
        if boxes:
            labels.append((f"{len(boxes)} face{'' if len(boxes) == 1 else 's'}", 1.0))
        labels += [(name, round(share, 3)) for name, share in top]
        # The brightness label's score is how far the scene is that way: luma, or 1 - luma.
        labels.append((level, round(1.0 - luma if level == "dark" else luma, 3)))

        names = [name for name, _ in top]
        caption = f"The camera shows {_count(len(boxes), 'face')}, in a {level} scene"
        if len(names) == 1:
            caption += f"; the main colour is {names[0]}."
        else:
            caption += f"; the main colours are {_join(names)}."
        details = {
            "faces": boxes,
            "brightness": round(luma, 3),
            "brightness_level": level,
            "colours": {name: round(share, 3) for name, share in colours},
            "size": [width, height],
            "elapsed_ms": round((time.perf_counter() - start) * 1000, 2),
        }
        return SceneDescription(caption, labels, self.description, details)

    def _detect_faces(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        import cv2

        # Haar features are normalised per window, but equalising still rescues dark frames.
        # A 1.15 scale step with 4 neighbours found every face that 1.1 / 5 found on the test
        # photographs (dark, small, several) at about 2/3 of the cost; 1.2 missed faces of
        # ~30 px. Faces under 1/12 of the short side (20 px at 240) are not looked for.
        min_face = max(20, min(gray.shape) // 12)
        found = self._faces.detectMultiScale(
            cv2.equalizeHist(gray),
            scaleFactor=1.15,
            minNeighbors=4,
            minSize=(min_face, min_face),
        )
        faces = [tuple(int(v) for v in box) for box in found]
        return sorted(faces, key=lambda b: b[2] * b[3], reverse=True)

    def _dominant_colours(self, small: np.ndarray) -> list[tuple[str, float]]:
        """Colour names with their share of the frame, largest first (same names merged)."""
        import cv2

        pixels = shrink(small, COLOUR_SIDE).reshape(-1, 3).astype(np.float32)
        k = min(COLOUR_CLUSTERS, len(pixels))
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
        cv2.setRNGSeed(1234)  # the same frame gets the same colours
        _, assigned, centres = cv2.kmeans(pixels, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
        counts = np.bincount(assigned.ravel(), minlength=k)
        shares: dict[str, float] = {}
        for centre, count in zip(centres, counts, strict=True):
            if count:
                name = colour_name(centre)
                shares[name] = shares.get(name, 0.0) + float(count) / len(pixels)
        return sorted(shares.items(), key=lambda item: item[1], reverse=True)


BACKEND = Backend(
    stage="vision", name="opencv", config=OpenCVVision, factory=OpenCVVisionBackend,
    package="cv2", install="pip install 'voxlive[vision]'  (opencv-python-headless)",
    model_field=None,
)
