"""Arousal from prosody: how high, how varied, how loud and how fast the caller speaks.

This is NOT a trained emotion model and cannot tell anger from joy (both are loud, high and
fast). It estimates one dimension, arousal, from six numbers measured with numpy alone
(about 3 ms per second of audio on one core), and maps it to three coarse labels. What it is
good for is noticing that a caller is more worked up, or flatter and slower, than they
were earlier in the call, which is what the prompt and the reply's voice can use.

Features, per user turn (16 kHz mono, 32 ms frames every 10 ms):
  pitch_st        median F0 of voiced frames, in semitones above 100 Hz (YIN, 60-400 Hz)
  pitch_range_st  10th-90th percentile spread of that F0, in semitones
  energy_db       median frame level of the speech frames, dBFS
  energy_var_db   standard deviation of that level, dB
  rate            energy-envelope peaks (roughly syllables) per second of speech
  pause_share     share of the turn (first to last speech frame) spent in pauses >= 200 ms

Each feature becomes a z-score against the caller's own history in this call, blended
with population priors while that history is short (ProsodySpeaker.reference). Arousal is
tanh of a weighted sum of the z-scores (pauses count against). A deep male voice is thus
not "low" for ever, and a caller who always talks high is not "excited" for ever.

A turn with less than `min_speech_s` of voiced (pitched) speech is "unknown": silence,
a click, a cough, and noise too (YIN finds no period in it), rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from voxlive.emotion.base import SAMPLE_RATE, Emotion, as_mono_float32, unknown

FRAME = 512
"""32 ms analysis frames: at least two periods of the lowest pitch (60 Hz is 16.7 ms)."""
HOP = 160
"""10 ms between frames."""
F0_MIN, F0_MAX = 60.0, 400.0
LAG_MIN = int(SAMPLE_RATE // F0_MAX)  # 40 samples
LAG_MAX = int(np.ceil(SAMPLE_RATE / F0_MIN))  # 267 samples
FFT_SIZE = 1024
"""Zero-padded to twice the frame, so the FFT autocorrelation is linear, not circular."""
YIN_THRESHOLD = 0.3
"""A frame is voiced when YIN's normalised difference dips below this at some lag. Voiced
speech dips to ~0.02-0.2; white noise stays near 1, so noise alone finds no pitch."""
NEAR_BEST = 0.05
"""The period is the first dip within this of the frame's deepest one. Plain YIN takes the
first dip under the threshold, which at formant transitions is often a fraction of the
period (a pitch a fifth or an octave too high, in one frame out of ten with espeak)."""
SILENCE_DB = -55.0
"""Frames quieter than this (dBFS) are never speech."""
SPEECH_RANGE_DB = 30.0
"""...nor frames more than this below the turn's loud frames (its 95th percentile)."""
MIN_PAUSE_FRAMES = 20
"""A pause is at least 200 ms of non-speech: shorter gaps are stop closures, not pauses."""
BLOCK = 1000
"""Frames analysed at once (10 s): a long monologue costs time, not memory."""
PEAK_HALF_WIDTH = 5
"""An envelope peak is the maximum within +-50 ms: at most ten syllables a second."""
PEAK_BASE_FRAMES = 20
"""...and stands out from the lowest point within 200 ms on both sides..."""
PEAK_PROMINENCE_DB = 3.0
"""...by at least this much."""

FEATURES = ("pitch_st", "pitch_range_st", "energy_db", "energy_var_db", "rate", "pause_share")

# Where a stranger's turn is expected: the mean of adult conversational speech, and how
# far one caller's own average lies from it (the spread between callers). F0: men
# ~120 Hz, women ~210 Hz, so the mean sits between (160 Hz = 8 st) with a wide spread.
# Level: what a browser microphone with automatic gain control delivers. Rate:
# conversational articulation rates are 4-6 syllables a second. Pauses: a single
# sentence has none, a longer turn some.
PRIOR_MEAN = np.array([8.0, 6.0, -26.0, 6.0, 5.0, 0.10])
PRIOR_STD = np.array([4.0, 2.0, 5.0, 1.5, 0.8, 0.08])
TURN_STD = np.array([1.5, 1.2, 3.0, 1.0, 0.6, 0.06])
"""How much one caller's turns differ from each other when their mood has not changed:
the spread that a turn's z-score is measured in once the caller's baseline is known. The
words alone move the syllable rate by about half a syllable a second."""
PRIOR_TURNS = 2.0
"""TURN_STD weighs as much as this many turns against the caller's own observed spread."""
MIN_TURN_STD_FRACTION = 0.75
"""A caller's observed spread never counts as less than 3/4 of TURN_STD: a caller who has
been steady for a few turns would otherwise have every small difference, even one made
by the words, counted as a large change of mood."""

WEIGHTS = np.array([0.30, 0.20, 0.15, 0.05, 0.30, -0.15])
"""Arousal weights on the z-scores, in FEATURES order. Higher, more varied, louder and
faster speech is more aroused; more pausing is less. They sum (in absolute value) to
1.15, so a turn one standard deviation up on every count gives tanh(1.15) = 0.82."""

EXCITED_ABOVE = 0.35
"""arousal >= +0.35 is "excited"; <= -0.35 is "low"; between is "neutral". A third of
the way to the extremes: one feature a full standard deviation off (weight 0.3) is
not enough on its own; two or three together are."""
LABEL_CENTRES = {"low": -0.7, "neutral": 0.0, "excited": 0.7}
"""Scores are a softmax over squared distances to these centres, which puts the
decision boundaries exactly at +-EXCITED_ABOVE (midway between neighbouring centres)."""
SCORE_TEMPERATURE = 0.05


class ProsodyConfig(Protocol):
    """What ProsodyEmotionBackend reads from its configuration (voxlive.config's model has it)."""

    min_speech_s: float


@dataclass(frozen=True)
class ProsodyFeatures:
    pitch_st: float
    pitch_range_st: float
    energy_db: float
    energy_var_db: float
    rate: float
    pause_share: float
    voiced_s: float
    speech_s: float

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in FEATURES], dtype=np.float64)


@dataclass
class ProsodySpeaker:
    """One caller's baseline over the call: running mean and variance (Welford) of each
    feature across their judged turns. A new call starts a new baseline. A call's turns
    are analysed one after another, so it needs no lock."""

    turns: int = 0
    mean: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean and standard deviation to score the next turn against.

        The caller's own average is estimated as a normal-normal posterior: the population
        prior (PRIOR_MEAN, PRIOR_STD) blended with the mean of their n turns, each turn
        weighing 1/turn_variance against the prior's 1/PRIOR_STD**2. So a stranger is
        scored against the population (spread sqrt(PRIOR_STD**2 + TURN_STD**2)), and after
        a turn or two against themselves (spread close to their turn-to-turn spread)."""
        n = float(self.turns)
        observed = self.m2 / n if n else np.zeros(len(FEATURES))
        turn_var = (PRIOR_TURNS * TURN_STD**2 + n * observed) / (PRIOR_TURNS + n)
        turn_var = np.maximum(turn_var, (MIN_TURN_STD_FRACTION * TURN_STD) ** 2)
        precision = 1.0 / PRIOR_STD**2 + n / turn_var
        mean = (PRIOR_MEAN / PRIOR_STD**2 + n * self.mean / turn_var) / precision
        return mean, np.sqrt(1.0 / precision + turn_var)

    def update(self, x: np.ndarray) -> None:
        self.turns += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.turns
        self.m2 = self.m2 + delta * (x - self.mean)


class ProsodyEmotionBackend:
    """Per-turn arousal from prosody, normalised against the caller's own baseline."""

    def __init__(self, config: ProsodyConfig):
        self.config = config
        self.min_speech_s = float(config.min_speech_s)
        # Nothing to load and no shared state: calls may analyse turns in parallel.
        self.description = "prosody arousal (pitch, energy, rate, pauses; per-caller baseline)"

    def new_speaker(self) -> ProsodySpeaker:
        return ProsodySpeaker()

    def analyse(self, audio: np.ndarray, speaker: object) -> Emotion:
        """One turn's arousal and label. Updates `speaker` (a ProsodySpeaker from
        new_speaker; None scores against the priors alone) with this turn, after scoring
        it: each turn is judged against what came before it."""
        features = extract_features(audio)
        if features is None or features.voiced_s < self.min_speech_s:
            return unknown(self.description)
        state = speaker if isinstance(speaker, ProsodySpeaker) else ProsodySpeaker()
        mean, std = state.reference()
        x = features.vector()
        z = np.clip((x - mean) / std, -3.0, 3.0)  # one wild feature cannot decide alone
        arousal = float(np.tanh(np.dot(WEIGHTS, z)))
        state.update(x)
        label, confidence = label_for(arousal)
        return Emotion(label, confidence, scores_for(arousal), self.description, arousal)


def label_for(arousal: float) -> tuple[str, float]:
    """The label and its confidence: 0.5 on a threshold (a coin toss between two labels),
    1.0 at arousal 0 for "neutral" and at +-1 for "excited" and "low"."""
    a = float(np.clip(arousal, -1.0, 1.0))
    if a >= EXCITED_ABOVE:
        return "excited", 0.5 + 0.5 * (a - EXCITED_ABOVE) / (1.0 - EXCITED_ABOVE)
    if a <= -EXCITED_ABOVE:
        return "low", 0.5 + 0.5 * (-a - EXCITED_ABOVE) / (1.0 - EXCITED_ABOVE)
    return "neutral", 0.5 + 0.5 * (EXCITED_ABOVE - abs(a)) / EXCITED_ABOVE


def scores_for(arousal: float) -> dict[str, float]:
    """A softmax over the labels that sums to 1 and whose best label is label_for's."""
    names = list(LABEL_CENTRES)
    centres = np.array([LABEL_CENTRES[n] for n in names])
    logits = -((arousal - centres) ** 2) / SCORE_TEMPERATURE
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    return {n: float(w) for n, w in zip(names, weights, strict=True)}


def extract_features(audio: np.ndarray) -> ProsodyFeatures | None:
    """The turn's prosodic features, or None when it holds no voiced speech at all
    (silence, noise, less than one frame)."""
    x = as_mono_float32(audio)
    if x.size < FRAME:
        return None
    frames = sliding_window_view(x, FRAME)[::HOP]  # a view: no copy of the audio
    level_db = np.concatenate(
        [frame_level_db(_centred(frames[i : i + BLOCK])) for i in range(0, len(frames), BLOCK)]
    )
    gate = max(SILENCE_DB, float(np.percentile(level_db, 95)) - SPEECH_RANGE_DB)
    speech = level_db > gate
    if not speech.any():
        return None
    speech_frames = np.flatnonzero(speech)
    f0 = np.concatenate(
        [
            yin_f0(_centred(frames[speech_frames[i : i + BLOCK]]))
            for i in range(0, len(speech_frames), BLOCK)
        ]
    )
    voiced = f0 > 0
    if not voiced.any():
        return None
    semitones = 12.0 * np.log2(f0[voiced] / 100.0)
    p10, p50, p90 = np.percentile(semitones, [10, 50, 90])
    speech_db = level_db[speech]
    speech_s = speech.sum() * HOP / SAMPLE_RATE
    return ProsodyFeatures(
        pitch_st=float(p50),
        pitch_range_st=float(p90 - p10),
        energy_db=float(np.median(speech_db)),
        energy_var_db=float(np.std(speech_db)),
        rate=count_peaks(level_db, speech, gate) / speech_s,
        pause_share=pause_share(speech),
        voiced_s=float(voiced.sum() * HOP / SAMPLE_RATE),
        speech_s=float(speech_s),
    )


def _centred(frames: np.ndarray) -> np.ndarray:
    frames = frames.astype(np.float64)
    return frames - frames.mean(axis=1, keepdims=True)


def frame_level_db(frames: np.ndarray) -> np.ndarray:
    """Each (mean-removed) frame's RMS level in dBFS; -100 for digital silence."""
    return 10.0 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-10))


def yin_f0(frames: np.ndarray) -> np.ndarray:
    """F0 in Hz of each (mean-removed) frame by YIN (de Cheveigné and Kawahara 2002),
    with the difference function computed from an FFT autocorrelation; 0 where unvoiced."""
    n = frames.shape[1]
    spectrum = np.fft.rfft(frames, FFT_SIZE, axis=1)
    lags = np.arange(LAG_MAX + 2)
    # r(t) = sum_{j < n-t} x_j x_{j+t}; zero padding makes the FFT product linear.
    r = np.fft.irfft(spectrum * np.conj(spectrum), FFT_SIZE, axis=1)[:, : LAG_MAX + 2]
    energy = np.cumsum(frames**2, axis=1)
    head = energy[:, n - 1 - lags]  # sum_{j <= n-1-t} x_j^2
    before = np.concatenate([np.zeros((len(frames), 1)), energy[:, : LAG_MAX + 1]], axis=1)
    tail = energy[:, -1:] - before  # sum_{j >= t} x_j^2
    # Squared difference between the frame and itself shifted by t, per compared sample
    # (the overlap shrinks as t grows; without this long lags would look better).
    diff = np.maximum(head + tail - 2.0 * r, 0.0) / (n - lags)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(running, 1e-12)
    # The first local minimum in the allowed lag range that is under the threshold and
    # nearly as deep as the deepest.
    mid = cmnd[:, LAG_MIN : LAG_MAX + 1]
    left = cmnd[:, LAG_MIN - 1 : LAG_MAX]
    right = cmnd[:, LAG_MIN + 1 : LAG_MAX + 2]
    limit = np.minimum(YIN_THRESHOLD, mid.min(axis=1, keepdims=True) + NEAR_BEST)
    candidates = (mid < limit) & (mid <= left) & (mid < right)
    found = candidates.any(axis=1)
    lag = LAG_MIN + np.argmax(candidates, axis=1)
    rows = np.arange(len(frames))
    a, b, c = cmnd[rows, lag - 1], cmnd[rows, lag], cmnd[rows, lag + 1]
    curvature = a - 2.0 * b + c
    safe = np.where(np.abs(curvature) > 1e-12, curvature, 1.0)
    shift = np.where(np.abs(curvature) > 1e-12, 0.5 * (a - c) / safe, 0.0)
    period = lag + np.clip(shift, -1.0, 1.0)
    return np.where(found, SAMPLE_RATE / period, 0.0)


def count_peaks(level_db: np.ndarray, speech: np.ndarray, gate: float) -> int:
    """Syllable-ish nuclei: prominent maxima of the smoothed level inside speech."""
    env = np.where(speech, level_db, gate)
    env = np.convolve(env, np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0, mode="same")
    pad = PEAK_BASE_FRAMES
    padded = np.pad(env, pad, mode="constant", constant_values=gate)
    windows = sliding_window_view(padded, 2 * pad + 1)  # centred on each frame
    local = windows[:, pad - PEAK_HALF_WIDTH : pad + PEAK_HALF_WIDTH + 1].max(axis=1)
    base = np.maximum(windows[:, :pad].min(axis=1), windows[:, pad + 1 :].min(axis=1))
    peaks = speech & (env >= local) & (env - base >= PEAK_PROMINENCE_DB)
    # A flat top yields several equal maxima in a row: count each run once.
    starts = peaks & ~np.concatenate([[False], peaks[:-1]])
    return int(starts.sum())


def pause_share(speech: np.ndarray) -> float:
    """The share of the turn, from its first to its last speech frame, spent in pauses."""
    where = np.flatnonzero(speech)
    inner = ~speech[where[0] : where[-1] + 1]
    if not inner.any():
        return 0.0
    # Lengths of the runs of non-speech frames.
    edges = np.diff(np.concatenate([[0], inner.astype(np.int8), [0]]))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return float(lengths[lengths >= MIN_PAUSE_FRAMES].sum() / inner.size)
