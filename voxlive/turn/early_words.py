"""The turn's words, asked for before the speculative point.

The transcript is the longest wait between the user's last word and the reply: the
semantic end of turn needs its words, the LLM needs them, and Whisper takes a few hundred
milliseconds on a small CPU. So STT starts on a shorter silence (`transcribe_silence_ms`,
64 ms) than the reply (`speculative_silence_ms`, 160 ms), for the turn that pause would
end (the next generation); the LLM still starts at the speculative point, on these words.
Speech before that point voids the request: its transcript is dropped when it comes, and
the runtime replaces the request at the next pause (a new request for the same
generation). `bench turns`: STT wait after the last word p50 399 -> 309 ms, finished
turns' commit p50 533 -> 397 ms, premature commits unchanged. Starting the whole
speculative point at 64 ms (or STT at 32 ms) did worse: the voided work crowded the CPU.

Plain data, so the turn core (voxlive/turn/core.py) stays sans-I/O.
"""

from __future__ import annotations

from voxlive.config import TurnSettings
from voxlive.turn.vocabulary import StageFailed, Transcribed


class EarlyWords:
    """The core's memory of a transcription asked for before the speculative point."""

    def __init__(self, settings: TurnSettings):
        ms = settings.transcribe_silence_ms
        speculative = min(settings.speculative_silence_ms, settings.end_of_turn_silence_ms)
        # None: STT starts at the speculative point, with the reply
        self.after_s = None if ms is None or ms >= speculative else ms / 1000
        self.standing = False  # asked, and not void
        self.result: Transcribed | StageFailed | None = None  # its answer, once in

    def ask_at(self, silence_s: float) -> bool:
        """Is it time to ask, after this much silence? (Then it is asked.)"""
        if self.after_s is None or self.standing or silence_s < self.after_s:
            return False
        self.standing, self.result = True, None
        return True

    def void(self) -> None:
        self.standing, self.result = False, None

    def took(self, event: object, generation: int) -> bool:
        """Keeps the answer to the request for `generation` until the speculative point (a
        failure too: it is reported there, as one there would be)."""
        if not (self.standing and isinstance(event, (Transcribed, StageFailed))
                and event.generation == generation):
            return False
        self.result = event
        return True

    def claim(self) -> tuple[bool, Transcribed | StageFailed | None]:
        """At the speculative point: (was it asked, its answer if in); forgets both."""
        asked, result = self.standing, self.result
        self.void()
        return asked, result
