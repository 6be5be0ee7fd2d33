"""What the VAD windows add up to for the turn core: is the user voiced now, since when,
for how long, and how long the silence after has lasted. Plain state, no I/O: the core
(voxlive/turn/core.py) decides what windows it hears and what the runs mean."""

from __future__ import annotations

from dataclasses import dataclass

from voxlive.turn.vocabulary import VadWindow

HYSTERESIS = 0.15
"""A window counts as silence only below threshold - HYSTERESIS, so speech near the
threshold does not flicker between the two."""


@dataclass
class VoiceActivity:
    voiced: bool = False
    voiced_run: float = 0.0  # voiced seconds since the last long silence
    silence_run: float = 0.0  # seconds of silence since the last voiced window
    onset: float | None = None  # first voiced window of the current speech
    last_voiced: float = 0.0  # end of the last voiced window

    def hear(self, window: VadWindow, threshold: float, ignored: bool,
             long_silence_s: float) -> None:
        """One window; `ignored` ones (echo, the reply in half duplex) count as silence.
        Voiced blips separated by `long_silence_s` of silence do not add up."""
        if ignored:
            voiced = False
        elif window.probability >= threshold:
            voiced = True
        elif window.probability < threshold - HYSTERESIS:
            voiced = False
        else:
            voiced = self.voiced
        self.voiced = voiced

        if voiced:
            if self.voiced_run == 0.0:
                self.onset = round(window.t - window.duration, 6)
            self.voiced_run += window.duration
            self.silence_run = 0.0
            self.last_voiced = window.t
            return
        self.silence_run += window.duration
        if self.silence_run >= long_silence_s:
            self.voiced_run = 0.0
        if window.echo:
            # The assistant's own voice: whatever voiced windows came before it were
            # likely echo the guard missed; they must not add up to an interruption.
            self.voiced_run = 0.0
