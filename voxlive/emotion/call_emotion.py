"""One call's emotion stage: how each turn sounded, reported, and carried into the reply.

Kept out of CallSession so that the session stays about turns. The recogniser runs in a
worker thread beside STT (so it adds no time to the turn) with the caller's own per-call
state; a failure is reported as an error event and never fails the turn. The estimate
goes to the page (`user_emotion`), then into the reply as a prompt tag and a voice style
(style.py); the system prompt explains the tag once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from voxlive.emotion.base import Emotion, EmotionRecognizer
from voxlive.emotion.style import TAG_GUIDE, prompt_tag, reply_style

log = logging.getLogger(__name__)


class CallEmotion:
    def __init__(self, recognizer: EmotionRecognizer | None, emit: Callable[..., None]):
        self.recognizer = recognizer  # None: this profile does not listen for emotion
        self._speaker = recognizer.new_speaker() if recognizer is not None else None
        self._by_turn: dict[int, Emotion] = {}  # kept from the transcript to the reply
        self._emit = emit  # the session's `_emit(kind, **fields)`

    def system_prompt(self, prompt: str) -> str:
        """The system prompt, with the guide to the tags that the turns will carry."""
        return prompt if self.recognizer is None else f"{prompt}\n{TAG_GUIDE}"

    def start(self, audio: np.ndarray) -> asyncio.Future[Emotion] | None:
        """Start analysing a turn's audio in a worker thread; None without a recogniser."""
        if self.recognizer is None:
            return None
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, self.recognizer.analyse, audio, self._speaker)

    async def result(self, job: Any) -> Emotion | None:
        """The emotion estimate, or None; a failing emotion stage never fails the turn."""
        if job is None:
            return None
        try:
            return await job
        except Exception as exc:
            log.warning("emotion stage failed: %s", exc)
            self._emit("error", message=f"emotion recognition failed: {exc}", stage="emotion")
            return None

    def keep(self, generation: int, emotion: Emotion | None) -> None:
        """Tell the page how the turn sounded, and keep it for the turn's reply."""
        if emotion is None:
            return
        self._by_turn[generation] = emotion
        self._emit("user_emotion", turn=generation, label=emotion.label,
                   confidence=round(emotion.confidence, 3), backend=emotion.backend,
                   arousal=emotion.arousal,
                   scores={k: round(v, 3) for k, v in emotion.scores.items()})

    def for_reply(self, generation: int, user_text: str) -> tuple[str, str]:
        """(the reply's voice style, the user's text with its prompt tag), once per turn."""
        emotion = self._by_turn.pop(generation, None)
        if emotion is None:
            return "default", user_text
        return (reply_style(emotion.label, emotion.confidence),
                prompt_tag(emotion.label, emotion.confidence) + user_text)
