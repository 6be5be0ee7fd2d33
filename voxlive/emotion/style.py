"""From how the user sounded to how the assistant answers: a prompt tag and a voice style.

The emotion estimate goes to the LLM as a short tag on the user's turn (explained once
in the system prompt), and picks the reply's voice style. The styles are few and
backend-neutral; each TTS backend renders them its own way (rate and pitch for piper
and espeak-ng, a description for Parler-TTS).
"""

from __future__ import annotations

from typing import Literal

ReplyStyle = Literal["default", "cheerful", "calm"]

TAG_GUIDE = (
    "A user message may begin with a tag such as [voice: excited] saying how the user "
    "sounded (measured from their voice, not their words). Let it shape your tone: match "
    "an excited user's energy, be gentle and reassuring with a low or sad one, stay calm "
    "with an angry one. Never mention the tag itself."
)

MIN_CONFIDENCE = 0.3
"""Below this the estimate is not worth acting on: no tag, default voice."""

_STYLE_BY_LABEL: dict[str, ReplyStyle] = {
    "excited": "cheerful",
    "happy": "cheerful",
    "low": "calm",
    "sad": "calm",
    "angry": "calm",
}


def reply_style(label: str, confidence: float) -> ReplyStyle:
    if confidence < MIN_CONFIDENCE:
        return "default"
    return _STYLE_BY_LABEL.get(label, "default")


def prompt_tag(label: str, confidence: float) -> str:
    """The prefix for the user's turn: "[voice: excited] ", or "" when unsure."""
    if label == "unknown" or confidence < MIN_CONFIDENCE:
        return ""
    return f"[voice: {label}] "
