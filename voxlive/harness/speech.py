"""Spoken test material made on the spot with espeak-ng (no recordings to ship)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np

from voxlive.audio.resample import resample_once


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(text: str, rate: int, words_per_minute: int = 160, pitch: int = 50,
           voice: str = "en-us") -> np.ndarray:
    """`text` spoken by espeak-ng, as float32 mono at `rate`."""
    wav_bytes = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch),
         "--", text],
        capture_output=True, check=True, timeout=30,
    ).stdout
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        source_rate = wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return resample_once(pcm.astype(np.float32) / 32768.0, source_rate, rate)


def through_opus(samples: np.ndarray, rate: int) -> np.ndarray:
    """`samples` (float32 mono at `rate`) as a WebRTC call delivers them to the daemon:
    encoded by aiortc's Opus encoder as a caller's does, decoded, and resampled back to
    `rate` by the daemon's own resampler. What a transcriber hears of a call, offline."""
    import fractions

    import av
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.jitterbuffer import JitterFrame

    from voxlive.audio.resample import CALL_RATE, Resampler, to_int16

    encoder, decoder, back = OpusEncoder(), OpusDecoder(), Resampler(rate)
    pcm = to_int16(resample_once(samples, rate, CALL_RATE))
    frame_size = CALL_RATE // 50
    out = []
    for start in range(0, pcm.size - frame_size + 1, frame_size):
        frame = av.AudioFrame.from_ndarray(pcm[None, start:start + frame_size], format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts = CALL_RATE, start
        frame.time_base = fractions.Fraction(1, CALL_RATE)
        packets, timestamp = encoder.encode(frame)
        for packet in packets:
            for decoded in decoder.decode(JitterFrame(data=packet, timestamp=timestamp)):
                out.append(back.process_frame(decoded))
    return np.concatenate([*out, back.flush()])


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def write_wav(path: str, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
