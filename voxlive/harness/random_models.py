"""Randomly initialised models of the GPU stack's architectures, saved like the real ones.

No Parler-TTS weights can be fetched on the machines this project is tested on, so the
plumbing tests and the GPU check build a model of the real architecture from a config,
save it to a folder as `save_pretrained` would publish it, and load it back through the
backend's own loading code. Random weights say nothing about how the voice sounds:
what they prove is loading, shapes, streaming, cancellation and speed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

CORPUS = """\
Thomas Talia Elisabeth Jerry speaks whispers in a default happy sad confused laughing
whisper enunciated tone slowly and clearly quiet with very clear audio.
Hello there, this warms up the speech model. The weather is lovely today. How can I
help you? I can see a cup on the table. Paris is the capital of France. Sure, let me
think about that for a moment. One two three four five six seven eight nine ten.
"""

SIZES = {
    # A few thousand parameters per layer: the CPU plumbing tests.
    "tiny": dict(t5_width=32, t5_layers=2, t5_heads=2, width=32, layers=2, heads=2,
                 ffn=64, codebooks=4, codebook_size=64, latent=32),
    # Parler-TTS mini (v1/Expresso): flan-t5-large encoder, a 24-layer 1024-wide decoder
    # over the 9 codebooks of the 44.1 kHz DAC codec.
    "mini": dict(t5_width=1024, t5_layers=24, t5_heads=16, width=1024, layers=24, heads=16,
                 ffn=4096, codebooks=9, codebook_size=1024, latent=1024),
    # Mini's codec (the 44.1 kHz DAC, 9 codebooks of 1024) behind a tiny decoder:
    # `voxlive bench codec`, which measures the codec alone.
    "codec": dict(t5_width=32, t5_layers=2, t5_heads=2, width=32, layers=2, heads=2,
                  ffn=64, codebooks=9, codebook_size=1024, latent=1024),
}


def save_tokenizer(folder: Path) -> int:
    """A small byte-level BPE tokenizer with T5's special tokens; returns its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS.split("\n"), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>",
                                   eos_token="</s>", unk_token="<unk>",
                                   model_input_names=["input_ids", "attention_mask"])
    fast.save_pretrained(folder)
    return len(fast)


def build_parler(folder: Path, size: Literal["tiny", "mini", "codec"] = "tiny", seed: int = 0,
                 frames: int | None = None) -> Path:
    """A random Parler-TTS model (T5 text encoder, Parler decoder, DAC codec) in `folder`.

    Random weights have no sense of when a sentence ends; `frames` makes every
    generation at least that many codec frames long (min_new_tokens), for tests and
    timings that need a known length."""
    import torch
    from parler_tts import (
        DACConfig,
        ParlerTTSConfig,
        ParlerTTSDecoderConfig,
        ParlerTTSForConditionalGeneration,
    )
    from transformers import T5Config

    s = SIZES[size]
    folder.mkdir(parents=True, exist_ok=True)
    text_vocab = save_tokenizer(folder)
    if size == "mini":
        text_vocab = 32_128  # flan-t5's embedding table, whatever the tokenizer uses of it
    text = T5Config(vocab_size=text_vocab, d_model=s["t5_width"], d_kv=64,
                    d_ff=int(s["t5_width"] * 2.75), num_layers=s["t5_layers"],
                    num_heads=s["t5_heads"], feed_forward_proj="gated-gelu",
                    is_encoder_decoder=False)
    codec = DACConfig(num_codebooks=s["codebooks"], codebook_size=s["codebook_size"],
                      latent_dim=s["latent"], frame_rate=86, sampling_rate=44_100)
    eos = pad = s["codebook_size"]
    bos = eos + 1
    decoder = ParlerTTSDecoderConfig(
        # The released models have 64 spare ids above the codebook; trained weights never
        # emit them, random ones would (and the codec cannot decode them): codes, eos, bos.
        vocab_size=s["codebook_size"] + 2, max_position_embeddings=4096,
        num_hidden_layers=s["layers"], ffn_dim=s["ffn"], num_attention_heads=s["heads"],
        hidden_size=s["width"], num_codebooks=s["codebooks"], pad_token_id=pad,
        bos_token_id=bos, eos_token_id=eos, rope_embeddings=True)
    config = ParlerTTSConfig.from_sub_models_config(
        text, codec, decoder, vocab_size=text_vocab, decoder_start_token_id=bos,
        pad_token_id=pad)
    torch.manual_seed(seed)
    model = ParlerTTSForConditionalGeneration(config)
    generation = model.generation_config
    generation.decoder_start_token_id = bos
    generation.bos_token_id = bos
    generation.pad_token_id = pad
    generation.eos_token_id = eos
    generation.do_sample = True
    generation.max_length = 2600
    if frames is not None:
        generation.min_new_tokens = frames
    model.save_pretrained(folder)
    return folder
