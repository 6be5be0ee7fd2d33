"""Spoken turns for `voxlive bench turns` and the end-of-turn tests: finished questions,
and sentences with a thinking pause inside ("I would like to ... order a pizza").

Two sources, nothing recorded shipped with the code:
- espeak-ng voices at different speeds and pitches (made on the spot);
- real human speech: prompts of the Debian package `asterisk-core-sounds-en` (one
  professional voice, CC-BY-SA-3.0), from the real-speech corpus that
  voxlive/harness/real_speech.py fetches from the registries into a cache. A pause turn is
  a complete prompt cut after a word in its middle, a silence, and the rest.

Each turn knows where its speech truly ends, so a benchmark can measure the commit's
delay and tell a premature commit (during the pause) from a right one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxlive.audio.resample import MODEL_RATE

COMPLETE = (
    "What is the capital of France?", "How many legs does a spider have?",
    "Can you tell me a joke about cats?", "What time is it in Tokyo right now?",
    "How far away is the moon?", "Who wrote Romeo and Juliet?",
    "What is the weather like in Berlin today?", "Could you remind me to call my mother?",
    "Which planet is the largest in our solar system?", "How do I make a cup of tea?",
    # espeak-ng pauses at commas: finished requests with pauses inside, where the voice
    # alone once ended a turn early (the browser barge-in test's story request).
    "Tell me a long story about a dragon, who lives in a castle.",
    "First, check the weather, and then set an alarm for seven.",
)
PAUSED = (
    ("I would like to", "order a pizza for two people."),
    ("Can you tell me about the", "history of Rome?"),
    ("My favourite colour is blue and", "my sister likes green."),
    ("So I was thinking that maybe", "we could go to the beach."),
    ("What is the weather like in", "Paris this weekend?"),
    ("I need to book a table for", "four people tomorrow evening."),
    ("Could you tell me how to get to the", "train station please?"),
    ("I was wondering if you could", "help me with my homework."),
    ("The thing I want to know is", "how tall the Eiffel tower is."),
    ("Please remind me to buy", "milk and bread on the way home."),
)
VOICES = ((160, 50), (135, 30), (185, 70), (145, 60), (175, 40))
"""espeak-ng (words per minute, pitch): a spread of speakers."""
PAUSES_S = (0.6, 0.8, 1.0, 1.2, 1.5)
FUNCTION_WORDS = frozenset((
    "the", "a", "an", "to", "of", "and", "your", "for", "in", "is", "are", "you", "with",
    "or", "at", "on", "by", "if", "that", "be", "will", "my", "this", "has", "have", "from",
    "then"))


@dataclass(frozen=True)
class SpokenTurn:
    name: str
    kind: str  # "complete" or "pause"
    source: str  # "espeak" or "human"
    text: str
    audio: np.ndarray  # 16 kHz mono float32, the whole turn, pause included
    speech_end_s: float  # where the last word ends
    pause_at_s: float | None = None  # pause turns: where the thinking pause begins
    pause_s: float = 0.0
    before_pause: str = ""  # the words before the pause


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * MODEL_RATE)), np.float32)


def trim(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Without leading and trailing silence (20 ms frames under `threshold` RMS)."""
    frame = MODEL_RATE // 50
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > threshold)
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] * frame: (loud[-1] + 1) * frame]


def espeak_turns() -> list[SpokenTurn]:
    from voxlive.harness.speech import espeak

    turns = []
    for i, text in enumerate(COMPLETE):
        wpm, pitch = VOICES[i % len(VOICES)]
        audio = trim(espeak(text, MODEL_RATE, wpm, pitch))
        turns.append(SpokenTurn(f"espeak-complete-{i}", "complete", "espeak", text, audio,
                                len(audio) / MODEL_RATE))
    for i, (before, after) in enumerate(PAUSED):
        wpm, pitch = VOICES[(i + 2) % len(VOICES)]
        first = trim(espeak(before, MODEL_RATE, wpm, pitch))
        rest = trim(espeak(after, MODEL_RATE, wpm, pitch))
        pause = PAUSES_S[i % len(PAUSES_S)]
        audio = np.concatenate([first, silence(pause), rest])
        turns.append(SpokenTurn(f"espeak-pause-{i}", "pause", "espeak", f"{before} {after}",
                                audio, len(audio) / MODEL_RATE, len(first) / MODEL_RATE,
                                pause, before))
    return turns


# --- real human speech ---------------------------------------------------------------------


def asterisk_prompts(names: tuple[str, ...], cache: Path | None = None
                     ) -> dict[str, tuple[str, np.ndarray]]:
    """{name: (transcript, 16 kHz float32 audio)} of asterisk English prompts, from the
    real-speech corpus (voxlive/harness/real_speech.py: fetched once into its cache)."""
    from voxlive.harness import real_speech

    root = real_speech.fetch(cache, languages=("en",), mfa=False)
    entries = {source.split(":", 1)[1]: (path, text)
               for path, text, source in real_speech._asterisk_entries(root, "en")}
    missing = [n for n in names if n not in entries]
    if missing:
        raise KeyError(f"no asterisk prompts named {missing}")
    ffmpeg = real_speech.ffmpeg_exe()
    return {n: (entries[n][1], real_speech.decode(entries[n][0], ffmpeg)) for n in names}


HUMAN_COMPLETE = (
    "conf-invalidpin", "check-number-dial-again", "dir-multi9", "conf-onlyperson",
    "confbridge-removed", "conf-placeintoconf", "enter-num-blacklist", "dir-nomore",
    "conf-leaderhasleft", "demo-nomatch",
)
HUMAN_PAUSED = (
    "agent-pass", "cannot-complete-as-dialed", "conf-getconfno", "conf-kicked",
    "conf-waitforleader", "confbridge-invalid", "entr-num-rmv-blklist",
    "conf-roll-callcomplete", "followme/options", "conf-otherinparty",
)
WordTimes = Callable[[np.ndarray], list[tuple[str, float, float]]]
"""Audio -> its words with start and end seconds (e.g. faster-whisper word timestamps)."""


def cut_point(words: list[tuple[str, float, float]]) -> int | None:
    """The word after which to pause: a function word in the middle of the sentence."""
    inner = [i for i, (w, _, _) in enumerate(words[:-2])
             if i >= 2 and re.sub(r"[^\w']", "", w.lower()) in FUNCTION_WORDS]
    return inner[len(inner) // 2] if inner else None


def human_turns(word_times: WordTimes, cache: Path | None = None) -> list[SpokenTurn]:
    prompts = asterisk_prompts(HUMAN_COMPLETE + HUMAN_PAUSED, cache)
    turns = []
    for name in HUMAN_COMPLETE:
        text, audio = prompts[name]
        audio = trim(audio, 0.005)
        turns.append(SpokenTurn(f"human-complete-{name}", "complete", "human", text, audio,
                                len(audio) / MODEL_RATE))
    for i, name in enumerate(HUMAN_PAUSED):
        text, audio = prompts[name]
        audio = trim(audio, 0.005)
        words = word_times(audio)
        cut = cut_point(words)
        if cut is None:
            continue
        at = min(len(audio), int((words[cut][2] + 0.03) * MODEL_RATE))
        pause = PAUSES_S[i % len(PAUSES_S)]
        joined = np.concatenate([audio[:at], silence(pause), audio[at:]])
        before = " ".join(w for w, _, _ in words[: cut + 1])
        turns.append(SpokenTurn(f"human-pause-{name}", "pause", "human", text, joined,
                                len(joined) / MODEL_RATE, at / MODEL_RATE, pause, before))
    return turns


def whisper_word_times(model: object) -> WordTimes:
    """Word timings from a faster-whisper WhisperModel (the STT backend's `.model`)."""

    def word_times(audio: np.ndarray) -> list[tuple[str, float, float]]:
        segments, _ = model.transcribe(audio, language="en", beam_size=1,  # type: ignore
                                       word_timestamps=True, vad_filter=False)
        return [(w.word.strip(), w.start, w.end) for s in segments for w in s.words]

    return word_times
