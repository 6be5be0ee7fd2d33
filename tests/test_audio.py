"""Resampling, framing, the input ring and the paced output buffer."""

from __future__ import annotations

import numpy as np
import pytest

from voxlive.audio.output import FRAME_SAMPLES, AudioOutput, Playback
from voxlive.audio.recent import RecentAudio
from voxlive.audio.resample import FrameSplitter, Resampler, resample_once, to_int16


def test_48k_call_frames_become_16k_without_drift() -> None:
    """A minute of call audio cut into 20 ms frames keeps exactly a third of its samples."""
    resampler = Resampler(16_000)
    rng = np.random.default_rng(1)
    frames = 3000  # one minute of 20 ms frames
    produced = 0
    for _ in range(frames):
        produced += len(resampler.process(rng.uniform(-0.1, 0.1, 960).astype(np.float32), 48_000))
    produced += len(resampler.flush())
    assert produced == frames * 320


@pytest.mark.parametrize(
    ("rate", "out_rate"), [(22_050, 48_000), (16_000, 48_000), (48_000, 16_000)]
)
def test_resampling_keeps_the_duration_and_the_pitch(rate: int, out_rate: int) -> None:
    seconds = 2.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample_once(tone, rate, out_rate)
    assert abs(len(out) - seconds * out_rate) <= 2
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * out_rate / len(out)
    assert abs(peak_hz - 440) < 2
    assert 0.45 < np.max(np.abs(out[out_rate // 10 : -out_rate // 10])) < 0.55


def test_stereo_int16_frames_from_webrtc_are_mixed_to_mono() -> None:
    import av

    resampler = Resampler(16_000)
    stereo = np.zeros((1, 960 * 2), dtype=np.int16)
    stereo[0, 0::2] = 16384  # left channel only
    frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    frame.sample_rate = 48_000
    out = np.concatenate([resampler.process_frame(frame) for _ in range(10)])
    assert len(out) > 0
    assert 0.2 < float(np.median(out[len(out) // 2 :])) < 0.6  # half of 0.5 FS, not zero


def test_frame_splitter_cuts_exact_frames_and_keeps_the_rest() -> None:
    splitter = FrameSplitter(512)
    sizes = [320, 100, 700, 1, 2000]
    data = np.arange(sum(sizes), dtype=np.float32)
    frames, offset = [], 0
    for size in sizes:
        frames += splitter.push(data[offset : offset + size])
        offset += size
    assert all(len(f) == 512 for f in frames)
    assert len(frames) == sum(sizes) // 512
    assert splitter.pending == sum(sizes) % 512
    assert np.array_equal(np.concatenate(frames), data[: len(frames) * 512])


def test_recent_audio_slices_by_stream_time_and_forgets_the_oldest() -> None:
    for dtype in (np.int16, np.float32):
        ring = RecentAudio(rate=100, keep_seconds=2.0, dtype=dtype)
        for second in range(5):
            ring.append(np.full(100, second / 10, dtype=np.float32))
        assert ring.total == 500
        assert np.allclose(ring.slice(3.0, 4.0), 0.3, atol=1e-4)
        assert np.allclose(ring.slice(4.5, 5.0), 0.4, atol=1e-4)
        old = ring.slice(0.0, 4.0)  # seconds 0-2 are gone; what is left starts at 3.0
        assert len(old) == 100 and np.allclose(old, 0.3, atol=1e-4)
        assert old.dtype == np.float32 and len(ring.slice(6.0, 7.0)) == 0


def test_recent_audio_keeps_int16_half_the_memory_of_float() -> None:
    ring = RecentAudio(rate=16_000, keep_seconds=35.0)
    loud = np.array([-1.5, -1.0, 0.5, 1.0, 2.0], dtype=np.float32)  # clipped, not wrapped
    ring.append(loud)
    assert np.allclose(ring.slice(0, 1), [-1.0, -1.0, 0.5, 1.0, 1.0], atol=1e-4)
    for _ in range(40 * 50):  # 40 s in 20 ms frames: the ring is full
        ring.append(np.zeros(320, np.float32))
    assert 16_000 * 35 * 2 <= ring.nbytes <= 16_000 * 35.5 * 2


def test_recent_audio_frees_what_is_forgotten_and_slices_across_blocks() -> None:
    ring = RecentAudio(rate=100, keep_seconds=10.0, block_seconds=0.5)
    ramp = np.arange(800, dtype=np.float32) / 1000  # 8 s, each sample its own value
    for start in range(0, 800, 30):  # frames that straddle the blocks
        ring.append(ramp[start : start + 30])
    assert np.allclose(ring.slice(1.23, 4.56), ramp[123:456], atol=1e-4)
    full = ring.nbytes
    ring.forget_before(6.2)
    assert ring.nbytes == full * 2 // 8  # the blocks of seconds 6-8 are left
    assert np.allclose(ring.slice(0.0, 7.0), ramp[620:700], atol=1e-4)
    ring.forget_before(1.0)  # the floor never goes back
    assert len(ring.slice(0.0, 6.0)) == 0


class Recorder:
    def __init__(self) -> None:
        self.started: list[int] = []
        self.played: list[int] = []


def make_output() -> tuple[AudioOutput, Recorder]:
    seen = Recorder()
    return AudioOutput(on_started=seen.started.append, on_played=seen.played.append), seen


def tone(frames: float, value: int) -> np.ndarray:
    return np.full(int(FRAME_SAMPLES * frames), value, dtype=np.int16)


def test_output_is_silence_when_idle_and_plays_sentences_in_order() -> None:
    p1 = Playback(1)
    output, seen = make_output()
    assert not output.next_frame().any()
    output.push(p1, tone(2, 1000), "One.")
    output.push(p1, tone(0.5, 2000), "Two.")
    output.open(p1)
    output.finish(p1)
    frames = [output.next_frame() for _ in range(4)]
    assert seen.started == [1]
    assert np.all(frames[0] == 1000) and np.all(frames[1] == 1000)
    assert np.all(frames[2][: FRAME_SAMPLES // 2] == 2000)
    assert not frames[2][FRAME_SAMPLES // 2 :].any()  # padded with silence
    assert not frames[3].any()
    assert seen.played == [1]


def test_a_streamed_sentence_waits_for_its_next_chunk_instead_of_ending() -> None:
    p2 = Playback(2)
    output, seen = make_output()
    output.push(p2, tone(1, 300), "Streamed slowly.", complete=False)
    output.push(p2, tone(1, 900), "Never reached first.")  # behind the streamed one
    output.open(p2)
    output.finish(p2)
    assert np.all(output.next_frame() == 300)
    assert not output.next_frame().any()  # the TTS is behind: silence, not the next sentence
    assert p2.heard_text() == ""  # all that exists played, but the sentence goes on
    output.extend(p2, tone(1.5, 400))
    assert np.all(output.next_frame() == 400)
    output.extend(p2, tone(0, 0), complete=True)
    frame = output.next_frame()
    assert np.all(frame[: FRAME_SAMPLES // 2] == 400) and np.all(frame[FRAME_SAMPLES // 2 :] == 900)
    assert p2.heard_text() == "Streamed slowly. Never"  # and half the next one
    output.next_frame()
    assert seen.played == [2]


def test_a_streamed_sentence_that_ran_dry_ends_when_its_last_chunk_is_empty() -> None:
    p3 = Playback(3)
    output, seen = make_output()
    output.push(p3, tone(1, 300), "Short.", complete=False)
    output.open(p3)
    output.finish(p3)
    output.next_frame()
    assert seen.played == []
    output.extend(p3, tone(0, 0), complete=True)
    assert seen.played == [3] and output.idle


def test_chunks_of_a_dropped_streamed_sentence_go_nowhere() -> None:
    p5, p6 = Playback(5), Playback(6)
    output, _ = make_output()
    output.push(p5, tone(1, 300), "Cut off mid sentence.", complete=False)
    output.open(p5)
    output.drop(p5)
    output.extend(p5, tone(3, 300))
    assert output.idle and not output.next_frame().any()
    with pytest.raises(ValueError):
        output.extend(p6, tone(1, 300))


def test_a_reply_waits_until_its_turn_is_committed() -> None:
    p4 = Playback(4)
    output, seen = make_output()
    output.push(p4, tone(1, 700), "Ready early.")
    output.finish(p4)
    assert not output.next_frame().any()  # queued, but the user may still be talking
    assert seen.started == [] and seen.played == []
    output.open(p4)
    assert np.all(output.next_frame() == 700)
    assert seen.started == [4] and seen.played == [4]


def test_drop_silences_the_very_next_frame_and_heard_text_is_what_played() -> None:
    p7 = Playback(7)
    output, seen = make_output()
    output.push(p7, tone(10, 500), "The capital of France is Paris.")
    output.push(p7, tone(10, 500), "It is lovely.")
    output.open(p7)
    for _ in range(12):  # the first sentence and a fifth of the second
        assert output.next_frame().any()
    output.drop(p7)
    assert not output.next_frame().any()
    assert p7.heard_text() == "The capital of France is Paris."
    assert seen.played == []  # cut, never played to the end
    assert output.idle


def test_drop_keeps_other_replies() -> None:
    p1, p2 = Playback(1), Playback(2)
    output, _ = make_output()
    output.push(p1, tone(2, 100), "old")
    output.push(p2, tone(2, 200), "new")
    output.open(p1)
    output.open(p2)
    output.drop(p1)
    assert np.all(output.next_frame() == 200)


def test_pause_holds_the_reply_and_resume_plays_on_from_there() -> None:
    p3 = Playback(3)
    output, _ = make_output()
    output.push(p3, np.arange(FRAME_SAMPLES * 3, dtype=np.int16), "one two three")
    output.open(p3)
    first = output.next_frame()
    p3.pause()
    assert not output.next_frame().any() and not output.next_frame().any()
    p3.resume()
    second = output.next_frame()
    assert second[0] == first[-1] + 1  # no sample lost or repeated
    assert p3.heard_text() == "one two"


def test_heard_text_counts_a_partly_played_sentence_by_proportion() -> None:
    p2 = Playback(2)
    output, _ = make_output()
    output.push(p2, np.ones(FRAME_SAMPLES * 4, dtype=np.int16), "one two three four")
    output.open(p2)
    output.next_frame()
    output.next_frame()
    assert p2.heard_text() == "one two"


def test_a_reply_with_no_audio_is_played_once_committed() -> None:
    p3 = Playback(3)
    output, seen = make_output()
    output.finish(p3)
    assert seen.played == []
    output.open(p3)
    assert seen.played == [3]


def test_every_frame_sent_is_reported_for_the_echo_guard() -> None:
    p1 = Playback(1)
    sent: list[np.ndarray] = []
    output = AudioOutput(on_frame=sent.append)
    output.push(p1, tone(1, 300), "x")
    output.open(p1)
    output.next_frame()
    output.next_frame()
    assert len(sent) == 2 and np.all(sent[0] == 300) and not sent[1].any()


def test_to_int16_clips() -> None:
    assert list(to_int16(np.array([-2.0, 0.0, 2.0]))) == [-32767, 0, 32767]
