"""The tool rounds of one turn: the LLM's tool calls become results and another LLM pass.

A round runs the calls of one LLM answer at once (several calls in a turn are fine), puts
the results into the conversation as OpenAI `tool` messages and streams the next answer,
which is spoken; up to `max_rounds` answers may call tools, the last is offered none so
the model has to speak. The built-in `look` (the camera) is one tool among the MCP ones.

So that the line is never silent for seconds, a round still running after
`filler_after_s` speaks the filler ("Let me check."). Every call is a `tool_call` event
(status running, then ok / error / cancelled / needs_confirmation, with its duration). A
failed call (an error, a timeout, a server that died) is spoken as an apology and never
ends the call; a barge-in cancels the turn's task, which cancels the MCP call (the SDK
sends notifications/cancelled) and reports the call as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from voxlive.backends.base import ToolCall
from voxlive.tools.config import ToolSettings
from voxlive.tools.mcp_client import ToolError, ToolManager
from voxlive.tools.results import (
    ToolOutcome,
    describe_image,
    outcome_of,
    parse_arguments,
    summarise_arguments,
)
from voxlive.turn.look import LOOK_TOOL, LOOK_TOOL_NAME

log = logging.getLogger(__name__)

Emit = Callable[..., None]
YES = re.compile(r"^\W*(yes|yeah|yep|sure|ok(ay)?|go ahead|do it|please do|confirm(ed)?)\b",
                 re.IGNORECASE)


@dataclass
class TurnIO:
    """What the session lends a tool round for one turn.

    stream: one LLM pass spoken into the turn's audio; returns the pass's tool calls.
    say: speak one sentence in the turn (the filler, an apology).
    look: describe the camera (None: no camera in this call).
    """

    stream: Callable[[list[dict[str, Any]], list[dict[str, Any]] | None],
                     Awaitable[list[ToolCall]]]
    say: Callable[[str], Awaitable[None]]
    look: Callable[[], Awaitable[str | None]] | None = None


class ToolRounds:
    """One call's tool rounds; the MCP connections (`manager`) are shared by all calls."""

    def __init__(self, manager: ToolManager | None, emit: Emit, vision: Any = None):
        self.manager = manager
        self.settings = manager.settings if manager is not None else ToolSettings()
        self._emit = emit
        self.vision = vision
        self._pending_confirmation: str | None = None  # a tool the assistant asked about
        self._offered: list[dict[str, Any]] | None = None
        self._reported: set[str] = set()  # connection problems already told to this call

    async def offer(self, llm: Any, look: bool) -> list[dict[str, Any]] | None:
        """The tools to offer the LLM this turn (None: no tool calling)."""
        if not llm.supports_tools:
            return None
        tools = [LOOK_TOOL] if look else []
        if self.manager is not None and self.manager.connections:
            tools += [tool.schema() for tool in await self.manager.tools()]
            for problem in self.manager.problems:  # a server that will not start or answer
                if problem not in self._reported:
                    self._reported.add(problem)
                    self._emit("error", message=problem, stage="tools")
        self._offered = tools or None
        return self._offered

    async def run(self, turn: int, user_text: str, messages: list[dict[str, Any]],
                  calls: list[ToolCall], io: TurnIO) -> None:
        """Answer `calls` (the first pass's), then let the model speak; bounded rounds."""
        confirmed = self._pending_confirmation if YES.match(user_text) else None
        self._pending_confirmation = None
        for round_index in range(self.settings.max_rounds):
            calls = [c if c.id else ToolCall(c.name, c.arguments, f"call-{turn}-{i}")
                     for i, c in enumerate(calls[: self.settings.max_calls_per_round])]
            outcomes = await self._round(turn, calls, io, confirmed)
            failed = [(c, o) for c, o in zip(calls, outcomes, strict=True)
                      if o.kind in ("error", "timeout", "unavailable")]
            for call, _ in failed[:1]:
                await io.say(self.settings.apology.format(tool=call.name.replace("_", " ")))
            if len(failed) == len(calls):
                return  # nothing to answer with: the apology was the answer
            messages = [*messages, _assistant_calls(calls),
                        *({"role": "tool", "tool_call_id": c.id, "content": o.text}
                          for c, o in zip(calls, outcomes, strict=True))]
            last = round_index + 1 == self.settings.max_rounds
            calls = await io.stream(messages, None if last else self._offered)
            if not calls:
                return

    async def _round(self, turn: int, calls: list[ToolCall], io: TurnIO,
                     confirmed: str | None) -> list[ToolOutcome]:
        work = asyncio.ensure_future(asyncio.gather(
            *(self._call(turn, call, io, confirmed) for call in calls)))
        try:
            done, _ = await asyncio.wait({work}, timeout=self.settings.filler_after_s)
            if not done and self.settings.filler:
                await io.say(self.settings.filler)
            return await work
        finally:
            if not work.done():  # a barge-in cancelled the turn: cancel the calls too
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work

    async def _call(self, turn: int, call: ToolCall, io: TurnIO,
                    confirmed: str | None) -> ToolOutcome:
        started = time.perf_counter()
        event = {"turn": turn, "id": call.id, "name": call.name,
                 "arguments": summarise_arguments(call.arguments)}
        self._emit("tool_call", **event, status="running")
        try:
            outcome = await self._execute(call, io, confirmed)
        except asyncio.CancelledError:
            self._emit("tool_call", **event, status="cancelled",
                       duration_ms=round(1000 * (time.perf_counter() - started)))
            raise
        except Exception as exc:  # a bug in a tool's result must not end the call
            log.exception("tool %s failed", call.name)
            outcome = ToolOutcome(error=f"{type(exc).__name__}: {exc}", kind="error")
        if outcome.error is not None and not outcome.text:
            outcome.text = f"The tool failed: {outcome.error}"
        fields: dict[str, Any] = {"status": "ok" if outcome.kind == "ok" else outcome.kind,
                                  "duration_ms": round(1000 * (time.perf_counter() - started))}
        if outcome.error is not None:
            fields["status"] = "error"
            fields.update(error=outcome.error, error_kind=outcome.kind)
        if outcome.images:
            fields["images"] = outcome.images
        self._emit("tool_call", **event, **fields)
        return outcome

    async def _execute(self, call: ToolCall, io: TurnIO, confirmed: str | None) -> ToolOutcome:
        if call.name == LOOK_TOOL_NAME and io.look is not None:
            caption = await io.look()
            return ToolOutcome(text=caption or "The camera shows nothing: it is off or the "
                               "picture is dark.")
        tool = self.manager.find(call.name) if self.manager is not None else None
        if tool is None:
            return ToolOutcome(error=f"there is no tool named {call.name!r} (now)",
                               kind="unavailable")
        try:
            arguments = parse_arguments(call.arguments)
        except ValueError as exc:
            return ToolOutcome(error=str(exc), kind="error")
        if self.manager.settings_of(tool).needs_confirmation(tool.remote_name) and \
                confirmed != call.name:
            self._pending_confirmation = call.name
            return ToolOutcome(kind="needs_confirmation", text=(
                "Not done yet: this tool needs the user's consent. Ask the user, in one short "
                f"question, whether to go ahead with {call.name} "
                f"({summarise_arguments(call.arguments)}); call it again once they say yes."))
        try:
            result = await self.manager.call(tool, arguments)
        except ToolError as exc:
            return ToolOutcome(error=exc.message, kind=exc.kind)
        outcome = outcome_of(result, self.settings.long_result_chars,
                             self.settings.max_result_chars)
        if outcome.images and self.vision is not None:
            loop = asyncio.get_running_loop()
            try:
                caption = await loop.run_in_executor(None, describe_image, self.vision,
                                                     outcome.images[0])
            except Exception as exc:  # the picture is still shown; only its words are lost
                log.warning("describing a tool's image failed: %s", exc)
                caption = None
            if caption:
                outcome.text += f"\nWhat the image shows: {caption}"
        return outcome


def _assistant_calls(calls: list[ToolCall]) -> dict[str, Any]:
    """The assistant message that made `calls` (OpenAI tool-calling format)."""
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": c.id, "type": "function",
         "function": {"name": c.name, "arguments": c.arguments or "{}"}} for c in calls]}

