"""The chat history the LLM sees: only what was said and heard.

The turns hold nothing but the words: the user's (without the emotion tag) and the
assistant's as heard. The bookkeeping a model needs goes into system messages, in the
short notes of bookkeeping.py, and only while it applies: a small model copies what it
sees in the turns, and a note in the turns ("The user interrupted that reply") was
spoken back to the user. The rule for cut-off replies goes with the system prompt; the
notes of this turn only (what the camera shows, how the user sounds) go in a system
message just before the question, so that the prompt up to there is the same as last
turn's and llama.cpp reuses its cached state instead of reading the history again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxlive.backends.base import ChatMessage
from voxlive.turn.bookkeeping import (
    CAMERA_NOTE,
    CUT_MARK,
    CUT_RULE,
    MOOD_NOTE,
    split_voice_tag,
)


@dataclass
class Conversation:
    system_prompt: str
    max_messages: int = 12
    turns: list[ChatMessage] = field(default_factory=list)

    def messages_for(self, user_text: str, camera: str | None = None) -> list[ChatMessage]:
        """The prompt for answering `user_text`; the history is not changed until it is heard.

        `camera` describes what the camera shows now; a leading "[voice: excited]" tag
        on `user_text` says how the user sounded. Both are notes of this prompt only.
        """
        mood, words = split_voice_tag(user_text)
        history = self._window()
        system = [self.system_prompt.strip()]
        if any(m["role"] == "assistant" and m["content"].endswith(CUT_MARK) for m in history):
            system.append(CUT_RULE)
        now = []
        if camera:
            now.append(CAMERA_NOTE.format(camera=camera.strip()))
        if mood:
            now.append(MOOD_NOTE.format(label=mood))
        turns = _alternating([*history, {"role": "user", "content": words.strip()}])
        context = [{"role": "system", "content": " ".join(now)}] if now else []
        return [{"role": "system", "content": "\n".join(n for n in system if n)},
                *turns[:-1], *context, turns[-1]]

    def commit(self, user_text: str, assistant_text: str, interrupted: bool = False) -> None:
        """Record a finished exchange; an interrupted reply keeps only the words played,
        ending with CUT_MARK (which the system message explains while it is in view)."""
        _, words = split_voice_tag(user_text)
        self.turns.append({"role": "user", "content": words.strip()})
        heard = assistant_text.strip()
        if heard:
            self.turns.append({"role": "assistant",
                               "content": f"{heard} {CUT_MARK}" if interrupted else heard})
        del self.turns[: max(0, len(self.turns) - self.max_messages)]

    def _window(self) -> list[ChatMessage]:
        window = self.turns[-self.max_messages:]
        while window and window[0]["role"] != "user":
            window = window[1:]  # a window never opens on a reply to an unseen question
        return window


def _alternating(turns: list[ChatMessage]) -> list[ChatMessage]:
    """Consecutive user turns (a reply cut off before its first word) become one."""
    out: list[ChatMessage] = []
    for turn in turns:
        if out and out[-1]["role"] == turn["role"] == "user":
            out[-1] = {"role": "user", "content": f"{out[-1]['content']} {turn['content']}"}
        else:
            out.append(dict(turn))
    return out
