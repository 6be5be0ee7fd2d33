"""When a call looks through its camera, and what it tells the page about it.

CallCamera (camera.py) keeps the frames and decides whether a fresh description is
needed. This is the call's side of looking, kept out of CallSession so that the session
stays about turns: the look at the start of the call, the look a turn asks for (the
user's words or the LLM's `look` tool), the `vision` event with what was seen, and the
time a look adds to a turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from voxlive.config import LookSettings
from voxlive.latency import TurnTiming, now
from voxlive.turn.look import asks_to_look
from voxlive.vision.camera import CallCamera

log = logging.getLogger(__name__)

Emit = Callable[..., None]
"""The session's `_emit(kind, **fields)`: one event to the page."""


class CallLooks:
    def __init__(self, camera: CallCamera, settings: LookSettings, emit: Emit):
        self.camera = camera
        self.settings = settings
        self._emit = emit

    def on_frame(self, frame: Any) -> bool:
        """Keep the transport's frame (a reference, no decoding). True for the first frame
        of a call that looks at its start: the caller then runs `look_at_start`."""
        first = self.camera.frames == 0
        self.camera.update(frame)
        return first and self.settings.at_call_start and self.camera.can_look

    async def look_at_start(self) -> None:
        try:
            await self.look("call_start", turn=0)
        except Exception as exc:  # a failing camera stage must not end the call
            log.warning("looking at call start failed: %s", exc)
            self._emit("error", message=f"vision failed: {exc}", stage="vision")

    async def look(self, reason: str, turn: int) -> Any:
        """Look through the camera (see CallCamera.look) and tell the page what was seen."""
        seen = await self.camera.look(reason)
        if seen is None:
            return None
        scene, cached = seen
        self._emit("vision", turn=turn, reason=reason, cached=cached, caption=scene.caption,
                   labels=[[label, round(score, 3)] for label, score in scene.labels],
                   backend=scene.backend, thumbnail=scene.details.get("thumbnail"))
        return scene

    def asked_by(self, user_text: str) -> bool:
        """Whether the user's words ask to look, and this config looks when they do."""
        return self.settings.on_intent and asks_to_look(user_text)

    def may_offer_tool(self, llm: Any) -> bool:
        """Whether the LLM may be offered the `look` tool: allowed, a camera, tool calling."""
        return (self.settings.on_llm_request and self.camera.can_look
                and llm.supports_tools)

    async def for_turn(self, reason: str, generation: int, timing: TurnTiming) -> str | None:
        """The caption for a turn's prompt (None without a camera); its time goes to
        the turn's `vision_ms`."""
        started = now()
        scene = await self.look(reason, generation)
        timing.vision_s += now() - started
        return scene.caption if scene is not None else None
