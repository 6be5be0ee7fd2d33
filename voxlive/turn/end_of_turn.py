"""The semantic end of turn, as the turn core sees it: its events, its action, its rule.

At the speculative pause the core asks the runtime's detector (voxlive/turn/detector.py)
whether the user has finished (`JudgeTurn`), and the runtime answers with `TurnJudged` or
`JudgeFailed`. `commit_rule` is the policy: a "complete" verdict ends the turn at once;
"incomplete", or no verdict yet, waits for the longer `max_incomplete_silence_ms`; a
failed detector leaves the turn to a fixed silence, `detector_failed_silence_ms` (1 s):
most failures are timeouts on a starved CPU, and the plain 480 ms rule then cut users
off inside their thinking pauses (`bench turns` under load: 2 premature commits in 20).
Plain data and pure functions, so the core stays sans-I/O and the rule reads in one place.

Two rules make a finished turn commit sooner (`SemanticPolicy`, from the profile's
`turn_detector`): the voice is asked before the speculative point (`ask_silence_ms`), so
its answer is in by the time STT starts; and a voice sure enough of itself
(`VoiceJudged` at or above `voice_alone`) ends the turn without waiting for the words:
the words need the transcript, a few hundred milliseconds later. Smart Turn hears
thinking pauses in real speech as unfinished with margin; on the bench corpus a score
of 0.75 let as few pauses through alone as the mix of voice and words did.
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
class SemanticPolicy:
    """How the core uses the detector's signals (the profile's `turn_detector`)."""

    voice_alone: float | None = None
    """The voice's P(complete) at or above which it ends the turn alone; None: never."""
    ask_silence_ms: int | None = None
    """Silence after which the detector is asked, if sooner than the speculative point
    (the verdict is then for the turn that pause will end); None: at that point."""

    def early_ask_s(self, speculative_s: float) -> float | None:
        """When to ask before the speculative point, in seconds of silence, or None."""
        if self.ask_silence_ms is None or self.ask_silence_ms / 1000 >= speculative_s:
            return None
        return self.ask_silence_ms / 1000


@dataclass(frozen=True)
class JudgeTurn:
    """Action: ask the detector whether the user finished with the audio `start`-`end`.
    Asked before the speculative point, `generation` is the one that pause will give the
    turn; speech before then drops the question (the runtime replaces it at the next)."""

    generation: int
    start: float
    end: float


@dataclass(frozen=True)
class TurnJudged:
    """Event: the detector's verdict on the pause of this generation."""

    generation: int
    complete: bool


@dataclass(frozen=True)
class VoiceJudged:
    """Event: the audio signal alone (P(complete) from the voice), as soon as it is in;
    a `TurnJudged` with the words follows unless the voice decided (`voice_decides`)."""

    generation: int
    probability: float


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
    if silence_ms >= fixed_silence_ms(settings, semantic):
        return CommitRule.TIMEOUT
    return None


def fixed_silence_ms(settings: TurnSettings, semantic: bool) -> int:
    """The silence that ends a turn without a verdict: a profile with a detector is here
    only when it failed, and waits longer than one that never had one."""
    if semantic:
        return max(settings.end_of_turn_silence_ms, settings.detector_failed_silence_ms)
    return settings.end_of_turn_silence_ms


def voice_decides(policy: SemanticPolicy, probability: float) -> bool:
    """Does the voice alone end the turn? (The runtime then skips the words' signal.)"""
    return policy.voice_alone is not None and probability >= policy.voice_alone


class Judgement:
    """The core's memory of what the detector said about the latest pause."""

    def __init__(self, policy: SemanticPolicy | None = None):
        self.policy = policy or SemanticPolicy()
        self.verdict: bool | None = None  # None: no answer yet
        self.failed = False
        self.early = False  # a question asked before the speculative point stands
        self._reported = False  # a failure is said once per call

    def asked(self, early: bool = False) -> None:
        """A new question (or, early=False after an early one, none standing)."""
        self.verdict, self.failed, self.early = None, False, early

    def take(self, event: TurnJudged | VoiceJudged | JudgeFailed) -> str | None:
        """Records an answer; returns the failure to report, once per call, if any."""
        if isinstance(event, VoiceJudged):
            if voice_decides(self.policy, event.probability):
                self.verdict = True
            return None
        if isinstance(event, TurnJudged):
            self.verdict = bool(self.verdict) or event.complete
            return None
        self.failed = True
        if self._reported:
            return None
        self._reported = True
        return event.message


def failure_note(settings: TurnSettings, message: str) -> str:
    return f"{message}; turns end after {fixed_silence_ms(settings, True)} ms of silence"
