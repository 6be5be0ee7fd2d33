"""Input the turn core must not take for the user, though the VAD hears a voice.

Three cases, each with a little state of its own, kept apart from the core's decisions:
- echo: the window is flagged as the reply's own sound (audio/echo.py);
- after a monologue cut at `max_utterance_s` and answered, the speech that goes on
  neither reopens the turn nor interrupts its answer, until the user's first pause
  (`end_of_turn_silence_ms` of quiet);
- half duplex (`barge_in: false`): the reply while it plays, and its echo's tail for
  `half_duplex_tail_ms` after it ends.

Sans-I/O like the core (voxlive/turn/core.py): stream times in, a yes or no out.
"""

from __future__ import annotations

from voxlive.config import TurnSettings
from voxlive.turn.vocabulary import VadWindow
from voxlive.turn.voice_activity import HYSTERESIS


class IgnoredInput:
    def __init__(self, settings: TurnSettings, vad_threshold: float):
        self.settings = settings
        self.threshold = vad_threshold
        self._cut_silence: float | None = None  # after a cut: quiet heard since (None: no cut)
        self._deaf_until: float | None = None  # half duplex: the reply's tail (-1: from now)

    def turn_cut(self) -> None:
        """A turn was cut at max_utterance_s: ignore the speech until the next pause."""
        self._cut_silence = 0.0

    def reply_ended(self) -> None:
        """A reply finished playing: in half duplex, its echo's tail is ignored too."""
        if not self.settings.barge_in:
            self._deaf_until = -1.0

    def ignores(self, window: VadWindow, speaking: bool) -> bool:
        """Does this window not count as the user? (`speaking`: a reply is playing.)"""
        if window.echo:
            return True
        if self._cut_silence is not None:
            quiet = window.probability < self.threshold - HYSTERESIS
            self._cut_silence = self._cut_silence + window.duration if quiet else 0.0
            if self._cut_silence < self.settings.end_of_turn_silence_ms / 1000:
                return True
            self._cut_silence = None
        if self.settings.barge_in:
            return False
        if speaking:
            return True
        if self._deaf_until is not None:
            if self._deaf_until < 0:  # set at the end of the reply, anchored now
                self._deaf_until = window.t + self.settings.half_duplex_tail_ms / 1000
            if window.t <= self._deaf_until:
                return True
            self._deaf_until = None
        return False
