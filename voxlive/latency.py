"""Per-turn latency: voice-to-voice and where the time went.

voice-to-voice runs from the user's last voiced VAD window to the first reply frame
handed to the transport, as shared/DESIGN.md defines it. With speculative endpointing
STT and the LLM start before the turn is committed, so the stages overlap the
endpointing wait; output_queue_ms counts from when the audio was both ready and allowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

STAGES = (
    "endpointing_ms",
    "stt_ms",
    "emotion_wait_ms",
    "vision_ms",
    "llm_first_token_ms",
    "first_sentence_ms",
    "tts_first_audio_ms",
    "output_queue_ms",
)


def now() -> float:
    return time.monotonic()


FRAME_S = 0.02
AUDIBLE_RMS = 0.01
"""A reply frame louder than this (RMS, full scale 1) is audible: a caller's measure of
barge-in ends at the last such frame (bench/bargein_breakdown.py uses the same level)."""


def audible(frame: np.ndarray) -> bool:
    """Is this int16 frame louder than AUDIBLE_RMS?"""
    samples = frame.astype(np.float32) / 32768.0
    return float(np.sqrt(np.mean(samples * samples))) > AUDIBLE_RMS


@dataclass
class BargeInTiming:
    """Barge-in latency: from the arrival of the user's first voiced audio to the end of
    the last reply frame sent (DESIGN.md), and the frames sent after the decision."""

    onset: float  # arrival of the window where the user's speech began
    decided: float
    turn: int
    frames_after_decision: int = 0

    def report(self, last_loud_frame_sent: float) -> dict[str, float]:
        silent_from = max(last_loud_frame_sent + FRAME_S, self.decided)
        return {
            "turn": self.turn,
            "onset_to_silence_ms": round((silent_from - self.onset) * 1000, 1),
            "onset_to_decision_ms": round((self.decided - self.onset) * 1000, 1),
            "frames_after_decision": self.frames_after_decision,
            # The same moments on the monotonic clock (seconds), so that a caller on this
            # machine can put its own stamps beside them.
            "onset_at": round(self.onset, 4),
            "decided_at": round(self.decided, 4),
            "silent_at": round(silent_from, 4),
        }


@dataclass
class TurnTiming:
    last_voiced: float
    transcribe_started: float  # at the speculative end of the turn
    committed: float | None = None  # at the end of the turn: the reply may play
    transcribed: float | None = None
    vision_s: float = 0.0  # looking through the camera for this turn (0 when it did not)
    emotion_wait_s: float = 0.0  # waiting for the emotion stage after STT finished
    llm_first_token: float | None = None
    first_sentence: float | None = None
    first_audio_queued: float | None = None
    first_frame_sent: float | None = None

    def report(self) -> dict[str, float]:
        def ms(later: float | None, earlier: float | None) -> float:
            if later is None or earlier is None:
                return float("nan")
            return round((later - earlier) * 1000, 1)

        return {
            "voice_to_voice_ms": ms(self.first_frame_sent, self.last_voiced),
            "endpointing_ms": ms(self.committed, self.last_voiced),
            "stt_ms": ms(self.transcribed, self.transcribe_started),
            # the transcript's wait after the user's last word (not a stage: it overlaps)
            "stt_wait_ms": ms(self.transcribed, self.last_voiced),
            "emotion_wait_ms": round(self.emotion_wait_s * 1000, 1),
            "vision_ms": round(self.vision_s * 1000, 1),
            "llm_first_token_ms": ms(self.llm_first_token, self.transcribed),
            "first_sentence_ms": ms(self.first_sentence, self.transcribed),
            "tts_first_audio_ms": ms(self.first_audio_queued, self.first_sentence),
            "output_queue_ms": ms(
                self.first_frame_sent,
                max(self.first_audio_queued or 0.0, self.committed or 0.0) or None,
            ),
        }
