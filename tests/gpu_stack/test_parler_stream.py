"""CodecStream: Parler-TTS codes to audio chunks, decoding a window per chunk.

On a tiny random Parler model (its codec is the real DAC architecture, so its receptive
field is the real one), fed the token columns generate() would feed. The reference is
the codec decoding the whole sentence at once.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.gpu_stack import require

require("parler_tts")

FRAMES = 60


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from parler_tts import ParlerTTSForConditionalGeneration

    from voxlive.harness.random_models import build_parler

    folder = build_parler(tmp_path_factory.mktemp("parler-stream"), "tiny")
    return ParlerTTSForConditionalGeneration.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def sentence(model):
    """Random codes, their columns as generate() streams them, and the one-shot decode."""
    import torch

    from voxlive.bench.codec import delayed_columns

    codebook_size = model.audio_encoder.config.codebook_size
    codes = np.random.default_rng(1).integers(0, codebook_size,
                                              (model.decoder.num_codebooks, FRAMES))
    generation = model.generation_config
    columns = delayed_columns(codes, generation.bos_token_id, generation.pad_token_id)
    with torch.inference_mode():
        whole = model.audio_encoder.decode(audio_codes=torch.from_numpy(codes)[None, None],
                                           audio_scales=[None]).audio_values.reshape(-1)
    return codes, columns, whole.numpy()


def stream(model, columns, **options):
    """Feed the columns; return the chunks, the steps at which each came out, the stream."""
    from voxlive.backends.parler_stream import CodecStream

    streamer = CodecStream(model, **{"chunk_frames": 17, **options})
    chunks, steps = [], []
    for step, column in enumerate(columns, start=1):
        streamer.put(column)
        while not streamer.queue.empty():
            chunks.append(streamer.queue.get())
            steps.append(step)
    streamer.end()
    chunks.extend(streamer)
    return chunks, steps, streamer


def snr_db(audio: np.ndarray, reference: np.ndarray) -> float:
    assert len(audio) == len(reference)
    error = np.mean((audio - reference) ** 2)
    return float(10 * np.log10(np.mean(reference ** 2) / max(error, 1e-30)))


def test_enough_context_and_lookahead_decode_exactly_like_the_whole_sentence(model, sentence):
    from voxlive.backends.parler_stream import CONTEXT_FRAMES

    _codes, columns, whole = sentence
    chunks, _steps, _ = stream(model, columns, holdback=CONTEXT_FRAMES, fade=0)
    assert len(chunks) >= 3
    assert snr_db(np.concatenate(chunks), whole) > 80
    # The same windows without their left context are audibly different: the context
    # is what makes them exact.
    chunks, _steps, _ = stream(model, columns, holdback=CONTEXT_FRAMES, fade=0, context=1)
    assert snr_db(np.concatenate(chunks), whole) < 60


def test_the_default_stream_is_close_to_the_whole_sentence_at_a_bounded_cost(model, sentence):
    from voxlive.backends.parler_stream import CONTEXT_FRAMES, HOLDBACK_FRAMES

    codes, columns, whole = sentence
    chunks, steps, streamer = stream(model, columns)
    audio = np.concatenate(chunks)
    assert audio.dtype == np.float32
    assert len(audio) == len(whole)
    assert snr_db(audio, whole) > 50
    # Without the provisional frames the chunk edges are much further off.
    edgy, _steps, _ = stream(model, columns, holdback=0)
    assert snr_db(np.concatenate(edgy), whole) < snr_db(audio, whole) - 10
    # Each chunk decodes its own frames plus a fixed margin, never the sentence so far.
    margin = CONTEXT_FRAMES + HOLDBACK_FRAMES
    assert streamer.decoded_frames <= FRAMES + len(chunks) * margin
    # The first chunk is half a chunk, out as soon as its frames (and the lookahead)
    # are complete: the delay pattern holds codebook k back k+1 steps.
    codebooks = codes.shape[0]
    first_frames = 17 // 2
    assert steps[0] == 1 + codebooks + first_frames + HOLDBACK_FRAMES - 1
    hop = len(whole) // FRAMES
    assert len(chunks[0]) == first_frames * hop
    assert all(len(c) == 17 * hop for c in chunks[1:-1])


def test_frames_holding_a_special_token_carry_no_audio(model, sentence):
    from voxlive.bench.codec import delayed_columns

    codes, _columns, whole = sentence
    broken = codes.copy()
    broken[2, 30] = model.generation_config.eos_token_id  # not a code: no audio
    generation = model.generation_config
    columns = delayed_columns(broken, generation.bos_token_id, generation.pad_token_id)
    chunks, _steps, _ = stream(model, columns)
    hop = len(whole) // FRAMES
    assert len(np.concatenate(chunks)) == (FRAMES - 1) * hop


def test_one_sentence_at_a_time(model):
    import torch

    from voxlive.backends.parler_stream import CodecStream

    streamer = CodecStream(model, 17)
    with pytest.raises(ValueError, match="batch size 1"):
        streamer.put(torch.zeros((2 * model.decoder.num_codebooks, 1), dtype=torch.long))


def test_abort_ends_the_stream_without_decoding(model, sentence):
    from voxlive.backends.parler_stream import CodecStream

    _codes, columns, _whole = sentence
    streamer = CodecStream(model, 17)
    for column in columns[:5]:  # not enough for a chunk
        streamer.put(column)
    streamer.abort()
    assert list(streamer) == []
    assert streamer.decoded_frames == 0


def test_streams_decoded_together_get_what_each_gets_alone(model, sentence, monkeypatch):
    """Sentences generated together reach a chunk at the same step: one codec pass for
    all of them gives each the audio its own pass would, in fewer passes."""
    from voxlive.backends.parler_stream import CodecStream, decode_due
    from voxlive.bench.codec import delayed_columns

    codes, columns, _whole = sentence
    generation = model.generation_config
    other = delayed_columns(np.roll(codes, 7, axis=1), generation.bos_token_id,
                            generation.pad_token_id)
    alone = [stream(model, cols)[0] for cols in (columns, other)]

    passes = []
    decode = model.audio_encoder.decode
    monkeypatch.setattr(model.audio_encoder, "decode",
                        lambda **kwargs: passes.append(kwargs["audio_codes"].shape) or
                        decode(**kwargs))
    pair = [CodecStream(model, 17), CodecStream(model, 17)]
    for step in zip(columns, other, strict=True):
        for streamer, column in zip(pair, step, strict=True):
            streamer.add(column)
        decode_due([s for s in pair if s.due()], one_pass=True)
    for streamer in pair:
        streamer.end()
    together = [list(streamer) for streamer in pair]
    for mine, reference in zip(together, alone, strict=True):
        assert len(mine) == len(reference)
        assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(mine, reference, strict=True))
    # Every chunk but each stream's last (decoded at its own end) came from a pass of two.
    batched = [shape for shape in passes if 2 in shape[:-2]]
    assert len(batched) == len(together[0]) - 1
