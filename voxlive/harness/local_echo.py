"""Echo on recorded material: a reply, the room it echoes in, and what a canceller leaves.

Shared by tests/test_aec.py (which asserts) and `voxlive bench local` (which measures).
The reply and the user are espeak-ng speech; the echo is the reply through a synthetic
room (an exponentially decaying noise tail after a direct path, like a small room's
impulse response), delayed and attenuated as a laptop's microphone hears its speakers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxlive.audio.aec import EchoCanceller, erle_db
from voxlive.audio.resample import MODEL_RATE
from voxlive.harness.speech import espeak, silence

REPLY = ("Once upon a time a dragon lived in a castle on a hill. Every summer a knight "
         "came to visit him, and they talked about the weather, the harvest and the "
         "stars until the evening came.")
USER = "Stop. What is the capital of France?"
BLOCK_S = 0.02
"""The transport's block: 20 ms, fed as the sound card would (played, then captured)."""


def reply_speech(rate: int = MODEL_RATE) -> np.ndarray:
    return espeak(REPLY, rate)


def user_speech(rate: int = MODEL_RATE) -> np.ndarray:
    """Another voice (British, lower pitch) saying something else."""
    return espeak(USER, rate, voice="en-gb", pitch=25)


def room_response(rate: int = MODEL_RATE, rt60_s: float = 0.3, drr_db: float = 6.0,
                  seed: int = 1) -> np.ndarray:
    """A synthetic small-room impulse response: a direct path, then a reverberant tail
    (noise) decaying by 60 dB in `rt60_s`, `drr_db` below the direct path in energy (a
    laptop's microphone sits a hand's width from its speakers: the direct sound
    dominates); unit energy."""
    rng = np.random.default_rng(seed)
    n = int(rt60_s * rate)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    tail[0] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def echo_of(far: np.ndarray, rate: int = MODEL_RATE, delay_s: float = 0.08,
            level_db: float = -8.0, room: np.ndarray | None = None) -> np.ndarray:
    """What the microphone hears of `far`: through `room` (if any), `delay_s` later,
    at `level_db` relative to the played signal's level; as long as `far`."""
    echo = np.convolve(far, room)[: len(far)] if room is not None else far.copy()
    scale = np.sqrt(np.mean(far**2) / max(float(np.mean(echo**2)), 1e-12))
    echo = echo * scale * 10 ** (level_db / 20)
    delay = int(delay_s * rate)
    return np.concatenate([np.zeros(delay, np.float32), echo])[: len(far)].astype(np.float32)


def cancel(canceller: EchoCanceller, far: np.ndarray, mic: np.ndarray,
           delay_ms: float = 0.0) -> np.ndarray:
    """Run `mic` through the canceller with `far` as the played signal, block by block
    as the local transport does; returns the cancelled signal, aligned with `mic`."""
    canceller.set_delay_ms(delay_ms)
    block = round(canceller.rate * BLOCK_S)
    out = []
    for start in range(0, len(mic), block):
        canceller.played(far[start : start + block])
        out.append(canceller.captured(mic[start : start + block]))
    cancelled = np.concatenate(out)
    return np.concatenate([cancelled, np.zeros(len(mic) - len(cancelled), np.float32)])


@dataclass
class EchoCase:
    """One recorded situation: the reply played, the echo, and optionally the user."""

    delay_s: float = 0.08
    level_db: float = -8.0
    room: bool = True
    drr_db: float = 6.0  # the room's direct-to-reverberant ratio
    noise_db: float = -60.0  # the microphone's own noise floor, relative to full scale

    def mic(self, far: np.ndarray, rate: int = MODEL_RATE,
            near: np.ndarray | None = None, near_at: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(microphone signal, echo part of it); `near`, the user's voice, is mixed in
        from sample `near_at` on."""
        room = room_response(rate, drr_db=self.drr_db) if self.room else None
        echo = echo_of(far, rate, self.delay_s, self.level_db, room)
        rng = np.random.default_rng(0)
        mic = echo + rng.standard_normal(len(echo)).astype(np.float32) * 10 ** (self.noise_db / 20)
        if near is not None:
            part = near[: max(0, len(mic) - near_at)]
            mic[near_at : near_at + len(part)] += part
        return mic.astype(np.float32), echo


def converged_erle(case: EchoCase, far: np.ndarray | None = None,
                   rate: int = MODEL_RATE) -> tuple[float, np.ndarray, np.ndarray]:
    """(ERLE in dB over the last two thirds, when the canceller has converged;
    the microphone signal; the cancelled signal) for `case`, with a fresh canceller."""
    far = reply_speech(rate) if far is None else far
    far = np.concatenate([far, silence(0.3, rate)])
    mic, _ = case.mic(far, rate)
    cancelled = cancel(EchoCanceller(rate), far, mic, case.delay_s * 1000)
    start = len(mic) // 3
    return erle_db(mic[start:], cancelled[start:]), mic, cancelled
