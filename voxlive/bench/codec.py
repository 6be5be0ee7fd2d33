"""What streaming Parler-TTS's codec costs: parler-tts's ParlerTTSStreamer against
voxlive's CodecStream (voxlive/backends/parler_stream.py).

    voxlive bench codec [--seconds 2 5] [--device cpu] [--json]

Both streamers are fed the same token columns, in the order and shape `generate()`
feeds them (delay pattern included), for sentences of a few lengths; the decoder itself
does not run, so the figures are the codec's work alone. The codec is the 44.1 kHz DAC
of Parler-TTS mini/Expresso (9 codebooks of 1024), random weights: timing and the
difference from decoding the whole sentence at once mean the same as with trained
weights; how it sounds does not. Needs the gpu stack (parler-tts).

Per streamer and length: codec seconds in all and per audio second, the longest single
decode (a stall of the decoder loop, which waits for it), the steps until the first
audio and how long that chunk plays, and the SNR against a one-shot decode.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty
from typing import Any

import numpy as np

CHUNK_S = 0.2


def delayed_columns(codes: np.ndarray, bos: int, pad: int) -> list[Any]:
    """The columns generate() would stream for these (codebooks, frames) codes:
    codebook k runs k+1 steps late, bos before it, padding after."""
    import torch

    codebooks, frames = codes.shape
    grid = np.full((codebooks, frames + codebooks), pad, dtype=np.int64)
    for k in range(codebooks):
        grid[k, :k + 1] = bos
        grid[k, k + 1:k + 1 + frames] = codes[k]
    columns = torch.from_numpy(grid)
    return [columns[:, :1]] + [columns[:, c] for c in range(1, columns.shape[1])]


def run_streamer(streamer: Any, columns: list[Any]) -> dict[str, Any]:
    """Feed `columns` and time every call, as generate() would make them."""
    queue = streamer.audio_queue if hasattr(streamer, "audio_queue") else streamer.queue
    chunks: list[np.ndarray] = []
    calls: list[float] = []
    first_step = None
    for step, column in enumerate(columns, start=1):
        began = time.perf_counter()
        streamer.put(column)
        calls.append(time.perf_counter() - began)
        chunks.extend(drain(queue))
        if first_step is None and chunks:
            first_step = step
    began = time.perf_counter()
    streamer.end()
    calls.append(time.perf_counter() - began)
    chunks.extend(drain(queue))
    return {"chunks": chunks, "calls": calls, "first_step": first_step}


def drain(queue: Any) -> list[np.ndarray]:
    out = []
    while True:
        try:
            item = queue.get_nowait()
        except Empty:
            return out
        if isinstance(item, np.ndarray) and len(item):
            out.append(item)


def compare(model: Any, seconds: float, seed: int = 0) -> dict[str, Any]:
    """Both streamers on one random sentence of `seconds`."""
    import torch
    from parler_tts import ParlerTTSStreamer

    from voxlive.backends.parler_stream import CodecStream

    codec = model.audio_encoder.config
    frames = round(seconds * codec.frame_rate)
    chunk_frames = round(CHUNK_S * codec.frame_rate)
    codes = np.random.default_rng(seed).integers(
        0, codec.codebook_size, (model.decoder.num_codebooks, frames))
    generation = model.generation_config
    columns = delayed_columns(codes, generation.bos_token_id, generation.pad_token_id)
    whole_codes = torch.from_numpy(codes)[None]
    whole_codes = whole_codes[None] if model.use_4dim_audio_codes else whole_codes
    scales = {"audio_scales": [None]} if model.use_audio_scales else {}
    with torch.inference_mode():
        whole = model.audio_encoder.decode(audio_codes=whole_codes.to(model.device),
                                           **scales).audio_values.reshape(-1).float().cpu()
    whole = whole.numpy()

    streamers = {
        "parler_tts_streamer": ParlerTTSStreamer(model, device=model.device,
                                                 play_steps=chunk_frames),
        "voxlive_codec_stream": CodecStream(model, chunk_frames),
    }
    result: dict[str, Any] = {"audio_s": round(len(whole) / codec.sampling_rate, 2),
                              "chunk_frames": chunk_frames}
    for name, streamer in streamers.items():
        with torch.inference_mode():
            run = run_streamer(streamer, columns)
        audio = np.concatenate(run["chunks"])
        n = min(len(audio), len(whole))
        error = audio[:n] - whole[:n]
        snr = 10 * np.log10(np.mean(whole[:n] ** 2) / max(np.mean(error ** 2), 1e-30))
        codec_s = sum(run["calls"])
        result[name] = {
            "codec_s": round(codec_s, 3),
            "codec_s_per_audio_s": round(codec_s / (len(whole) / codec.sampling_rate), 3),
            "longest_decode_ms": round(1000 * max(run["calls"]), 1),
            "chunks": len(run["chunks"]),
            "first_audio_step": run["first_step"],
            "first_chunk_ms": round(1000 * len(run["chunks"][0]) / codec.sampling_rate, 1),
            "samples_vs_whole": len(audio) - len(whole),
            "snr_db_vs_whole": round(float(snr), 1),
        }
    result["codec_speedup"] = round(result["parler_tts_streamer"]["codec_s"]
                                    / result["voxlive_codec_stream"]["codec_s"], 2)
    return result


def load_codec_model(folder: Path, device: str) -> Any:
    logging.getLogger("parler_tts").setLevel(logging.ERROR)  # whole configs at every load
    from parler_tts import ParlerTTSForConditionalGeneration

    from voxlive.harness.random_models import build_parler

    build_parler(folder, "codec")
    return ParlerTTSForConditionalGeneration.from_pretrained(folder).to(device).eval()


def run_codec_bench(seconds: list[float], device: str, as_json: bool) -> int:
    try:
        import parler_tts  # noqa: F401
    except ImportError:
        print("voxlive bench codec needs the gpu stack: pip install 'voxlive[gpu]'",
              file=sys.stderr)
        return 2
    results: dict[str, Any] = {"device": device}
    with tempfile.TemporaryDirectory() as tmp:
        model = load_codec_model(Path(tmp) / "parler-codec", device)
        compare(model, 0.5)  # warm-up: first calls allocate
        for length in seconds:
            results[f"{length:g}s"] = compare(model, length)
            if not as_json:
                print(json.dumps({f"{length:g}s": results[f"{length:g}s"]}), flush=True)
    print(json.dumps(results, indent=None if as_json else 2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return run_codec_bench(args.seconds, args.device, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
