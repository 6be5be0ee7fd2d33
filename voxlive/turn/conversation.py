"""The chat history the LLM sees: only what was said and heard."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxlive.backends.base import ChatMessage

INTERRUPTED_NOTE = (
    "The user interrupted that reply: they heard only the words above, nothing after."
)


@dataclass
class Conversation:
    system_prompt: str
    max_messages: int = 12
    turns: list[ChatMessage] = field(default_factory=list)

    def messages_for(self, user_text: str, camera: str | None = None) -> list[ChatMessage]:
        """The prompt for answering `user_text`; the history is not changed until it is heard.

        `camera` describes what the camera shows now; it is part of this prompt only.
        """
        context: list[ChatMessage] = []
        if camera:
            context.append({"role": "system", "content": (
                f"What the user's camera shows right now: {camera} "
                "Use it only if the user's question is about what they show or where they are."
            )})
        return [
            {"role": "system", "content": self.system_prompt},
            *self.turns[-self.max_messages :],
            *context,
            {"role": "user", "content": user_text},
        ]

    def commit(self, user_text: str, assistant_text: str, interrupted: bool = False) -> None:
        """Record a finished exchange; an interrupted reply keeps only the words played.

        The interruption is a separate system note, not a marker in the assistant's
        text: small models copy markers they see in their own past replies.
        """
        self.turns.append({"role": "user", "content": user_text})
        if assistant_text.strip():
            self.turns.append({"role": "assistant", "content": assistant_text.strip()})
        if interrupted:
            self.turns.append({"role": "system", "content": INTERRUPTED_NOTE})
        del self.turns[: max(0, len(self.turns) - self.max_messages)]
