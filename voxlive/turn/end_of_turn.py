"""The semantic end of turn, as the turn core sees it: its events, its action, its rule.

At the speculative pause the core asks the runtime's detector (voxlive/turn/detector.py)
whether the user has finished (`JudgeTurn`), and the runtime answers with `TurnJudged` or
`JudgeFailed`. `commit_rule` is the policy: a "complete" verdict ends the turn at once;
"incomplete", or no verdict yet, waits for the longer `max_incomplete_silence_ms`; a
failed detector leaves the turn to the fixed `end_of_turn_silence_ms`. Plain data and a
pure function, so the core stays sans-I/O and the rule reads in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voxlive.config import TurnSettings


class CommitRule(StrEnum):
    """Which rule ended the user's turn (the `turn_committed` event says it)."""

    SEMANTIC = "semantic"  # the detector heard a finished turn
    TIMEOUT = "timeout"  # enough silence: the fixed rule, or the longer one after "incomplete"
    MAX_UTTERANCE = "max_utterance"  # the turn was too long and was cut


@dataclass(frozen=True)
class JudgeTurn:
    """Action: ask the detector whether the user finished with the audio `start`-`end`."""

    generation: int
    start: float
    end: float


@dataclass(frozen=True)
class TurnJudged:
    """Event: the detector's verdict on the pause of this generation."""

    generation: int
    complete: bool


@dataclass(frozen=True)
class JudgeFailed:
    """Event: the detector failed or took too long; the fixed silence rule decides."""

    generation: int
    message: str


def commit_rule(settings: TurnSettings, silence_s: float, semantic: bool,
                verdict: bool | None, failed: bool) -> CommitRule | None:
    """The rule that ends an uncommitted turn after `silence_s` of silence, or None (wait)."""
    silence_ms = silence_s * 1000
    if semantic and not failed:
        if verdict:
            return CommitRule.SEMANTIC
        if silence_ms >= settings.max_incomplete_silence_ms:
            return CommitRule.TIMEOUT
        return None
    if silence_ms >= settings.end_of_turn_silence_ms:
        return CommitRule.TIMEOUT
    return None


def failure_note(settings: TurnSettings, message: str) -> str:
    return f"{message}; turns end after {settings.end_of_turn_silence_ms} ms of silence"
