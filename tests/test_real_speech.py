"""The real-speech corpus builder on what can be checked offline: transcripts and decoding."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import numpy as np
import pytest

from voxlive.harness import real_speech

ASTERISK_SAMPLE = """; Core Asterisk Sounds in English

activated: Activated.
agent-pass: Please enter your password followed by the pound key.
ascending-2tone: [ascending tones]
dictate/both_help: press * to toggle pause, press # to enter a new dictation filename
digits/40: forty
conf-adminmenu: Please press 1 to mute or unmute yourself.
queue-thankyou: [alternate] Thank you for your patience.
not a transcript line
"""

MFA_CONFTEST_SAMPLE = '''
@pytest.fixture(scope="session")
def reference_transcripts():
    return {
        "mfa_cutoff": "<cutoff-montreal> montreal <cutoff-forced> forced aligner",
        "mfa_um": "montreal forced um aligner",
        "mfa_laughter": "[laughter] montreal [laughter] forced aligner [laughter]",
        "mfa_internalsil": "<hes-montreal> <hes-forced>",
    }


@pytest.fixture(scope="session")
def filler_insertion_utterances():
    return ["mfa_um"]
'''


def test_asterisk_transcripts_keep_spoken_prompts_only():
    refs = real_speech.parse_asterisk_transcripts(ASTERISK_SAMPLE)
    assert refs["activated"] == "Activated."
    assert refs["digits/40"] == "forty"
    assert refs["conf-adminmenu"] == "Please press 1 to mute or unmute yourself."
    assert refs["queue-thankyou"] == "Thank you for your patience."
    assert "ascending-2tone" not in refs  # a tone, nothing said
    assert "dictate/both_help" not in refs  # keypad symbols are said as words
    assert len(refs) == 5


def test_mfa_references_drop_markup():
    refs = real_speech.parse_mfa_references(MFA_CONFTEST_SAMPLE)
    assert refs == {
        "mfa_cutoff": "montreal forced aligner",
        "mfa_um": "montreal forced um aligner",
        "mfa_laughter": "montreal forced aligner",
    }


def test_mfa_references_missing_fixture_is_a_clear_error():
    with pytest.raises(real_speech.CorpusError, match="reference_transcripts"):
        real_speech.parse_mfa_references("def other():\n    return {}\n")


def test_items_without_a_fetched_corpus_says_how_to_fetch(tmp_path):
    with pytest.raises(real_speech.CorpusError, match="real_speech fetch"):
        next(real_speech.items(cache_dir=tmp_path))


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(real_speech.CorpusError, match="language 'de'"):
        real_speech.fetch(tmp_path, languages=("de",), mfa=False)


def test_spread_subset_covers_the_whole_order():
    group = list(range(100))
    spread = real_speech._spread(group, 4)
    assert spread[:4] == [0, 25, 50, 75]
    assert sorted(spread) == group


def _ffmpeg() -> str:
    try:
        return real_speech.ffmpeg_exe()
    except real_speech.CorpusError as exc:
        pytest.skip(f"no ffmpeg to decode with (imageio-ffmpeg is in the test extra): {exc}")


def _fake_corpus(root: Path, ffmpeg: str) -> None:
    """The layout `dpkg -x` leaves, with one G.722 prompt encoded here from a tone."""
    share = root / "asterisk" / "en" / "usr" / "share"
    docs = share / "doc" / "asterisk-core-sounds-en"
    voice = share / "asterisk" / "sounds" / "en_US_f_Test"
    docs.mkdir(parents=True)
    voice.mkdir(parents=True)
    (docs / "core-sounds-en.txt.gz").write_bytes(gzip.compress(ASTERISK_SAMPLE.encode()))
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1.5:sample_rate=16000", "-c:a", "g722",
                    "-f", "g722", str(voice / "activated.g722")], check=True)


def test_g722_prompt_decodes_to_16khz_float32(tmp_path):
    ffmpeg = _ffmpeg()
    _fake_corpus(tmp_path, ffmpeg)
    found = list(real_speech.items(cache_dir=tmp_path, languages=("en",)))
    assert [(i.source, i.text, i.language) for i in found] == [
        ("asterisk-en:activated", "Activated.", "en")]
    audio = found[0].audio
    assert audio.dtype == np.float32
    assert abs(found[0].seconds - 1.5) < 0.05
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * real_speech.RATE / len(audio) - 440) < 5
    assert list(real_speech.items(cache_dir=tmp_path, languages=("en",), max_seconds=1.0)) == []
