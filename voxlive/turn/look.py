"""When to look through the camera: a small sans-I/O policy, like the turn core.

voxlive does not stream video into the LLM. It looks once at the start of a call,
when the user's words ask for it, or when the LLM asks for it, never more often than
`min_interval_s`, and it reuses the last description while the scene has not changed
(a cheap difference of tiny grey thumbnails).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

VISION_INTENT = re.compile(
    r"\b(what do you see|what can you see|can you see|do you see|look(ing)? at|take a look|"
    r"what am i (holding|wearing|showing)|what('s| is) (this|that|in my hand)|"
    r"what colou?r|how many (people|fingers|persons)|who is (here|there)|camera|"
    r"how do i look|show you|see (this|me|it))\b",
    re.IGNORECASE,
)


def asks_to_look(text: str) -> bool:
    return VISION_INTENT.search(text) is not None


LOOK_TOOL_NAME = "look"
LOOK_TOOL = {
    "type": "function",
    "function": {
        "name": LOOK_TOOL_NAME,
        "description": "Look through the user's camera and get a short description of "
                       "what it shows. Use it when the answer depends on what the user "
                       "is showing, wearing, holding or where they are.",
        "parameters": {"type": "object", "properties": {}},
    },
}


def look_tool_result(call: object, caption: str | None) -> list[dict[str, object]]:
    """The messages that answer the model's `look` call (OpenAI tool-calling format)."""
    call_id = getattr(call, "id", "") or "look-0"
    return [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call_id, "type": "function",
            "function": {"name": LOOK_TOOL_NAME, "arguments": getattr(call, "arguments", "{}")},
        }]},
        {"role": "tool", "tool_call_id": call_id,
         "content": caption or "The camera shows nothing: it is off or the picture is dark."},
    ]


@dataclass
class LookPolicy:
    min_interval_s: float = 2.0
    _last_look: float | None = None

    def should_look(self, now: float, reason: str) -> bool:
        """`reason`: "call_start", "intent" or "tool". `now` in seconds, any clock."""
        if self._last_look is not None and now - self._last_look < self.min_interval_s:
            return False
        self._last_look = now
        return True


def scene_signature(image: np.ndarray, size: int = 16) -> np.ndarray:
    """A tiny grey thumbnail, for telling whether the scene changed (no OpenCV needed)."""
    grey = image.astype(np.float32).mean(axis=2) if image.ndim == 3 else image.astype(np.float32)
    h, w = grey.shape
    rows = np.linspace(0, h, size + 1, dtype=int)
    cols = np.linspace(0, w, size + 1, dtype=int)
    return np.array([[grey[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].mean()
                      for j in range(size)] for i in range(size)], dtype=np.float32)


@dataclass
class SceneCache:
    """The last description, valid while the scene looks the same."""

    threshold: float = 12.0  # mean absolute difference of the thumbnails, in grey levels
    _signature: np.ndarray | None = None
    _value: object | None = None

    def get(self, signature: np.ndarray) -> object | None:
        if self._signature is None or self._value is None:
            return None
        if float(np.abs(signature - self._signature).mean()) >= self.threshold:
            return None
        return self._value

    def put(self, signature: np.ndarray, value: object) -> None:
        self._signature, self._value = signature, value
