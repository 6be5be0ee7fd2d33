"""What a tool call's arguments and result become: a short summary for the page, and the
text the LLM reads in the `tool` message.

An MCP result is a list of content blocks. Text goes to the LLM; a long text goes with an
instruction to summarise it, since a voice must not read out a page. An image cannot be
spoken: it is shown in the page's transcript (a data URL in the `tool_call` event) and the
LLM is told it is there, with the vision backend's description when the profile has one,
so the model can say in words what it shows.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

LONG_RESULT_NOTE = ("(A long result: do not read it out. Tell the user the gist in one or "
                    "two short spoken sentences.)\n")
MAX_IMAGE_BYTES = 2_000_000  # larger images are described, not sent to the page


@dataclass
class ToolOutcome:
    """One finished call: `text` for the LLM, `images` (data URLs) for the page."""

    text: str = ""
    images: list[str] = field(default_factory=list)
    error: str | None = None
    kind: str = "ok"  # "ok", "error", "timeout", "unavailable", "needs_confirmation"


def parse_arguments(raw: str) -> dict[str, Any]:
    """The model's JSON arguments as a dict; a clear ValueError when they are not."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"the model sent arguments that are not JSON ({exc.msg}): "
                         f"{raw[:80]!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"the model sent arguments that are not a JSON object: {raw[:80]!r}")
    return value


def summarise_arguments(raw: str, limit: int = 80) -> str:
    """`city=Paris, days=2`: short enough for a transcript line."""
    try:
        value = parse_arguments(raw)
    except ValueError:
        text = raw
    else:
        text = ", ".join(f"{k}={v if isinstance(v, str | int | float) else json.dumps(v)}"
                         for k, v in value.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def outcome_of(result: Any, long_result_chars: int, max_result_chars: int) -> ToolOutcome:
    """An mcp_types.CallToolResult as a ToolOutcome (images not yet described)."""
    texts: list[str] = []
    images: list[str] = []
    notes: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            mime = block.mime_type or "image/png"
            if len(block.data) * 3 // 4 <= MAX_IMAGE_BYTES:
                images.append(f"data:{mime};base64,{block.data}")
            notes.append(f"The tool made an image ({mime}); it is now shown on the user's "
                         "screen. Say briefly what it shows; do not read out data.")
        elif kind == "resource":
            texts.append(getattr(block.resource, "text", "") or f"[{block.resource.uri}]")
        else:
            notes.append(f"The tool also returned a {kind or 'non-text'} item.")
    if not texts and getattr(result, "structured_content", None):
        texts.append(json.dumps(result.structured_content))
    text = "\n".join(t for t in texts if t)
    if getattr(result, "is_error", False):
        return ToolOutcome(text=f"The tool failed: {text[:300]}", error=text[:300] or
                           "the tool reported an error", kind="error")
    if len(text) > long_result_chars:
        text = LONG_RESULT_NOTE + text[:max_result_chars]
    return ToolOutcome(text="\n".join([*notes, text]).strip() or "The tool returned nothing.",
                       images=images)


def describe_image(vision: Any, data_url: str) -> str | None:
    """The vision backend's caption of a data-URL image (blocking: run it in a thread)."""
    if vision is None:
        return None
    import cv2
    import numpy as np

    raw = base64.b64decode(data_url.split(",", 1)[1])
    bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    return vision.describe(np.ascontiguousarray(bgr[:, :, ::-1])).caption
