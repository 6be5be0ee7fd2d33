"""GPU check: the gpu profile's TTS and STT, random weights of the real architectures.

    python -m voxlive.bench.gpu_check [--out results.json] [--seconds 3]

Run in one go on a machine with an NVIDIA GPU (no weights needed, none downloaded). On
a machine with torch but neither the gpu stack nor a network, `bash
scripts/gpu-check-bundle.sh` collects the wheels here and `bash scripts/gpu-check-device.sh`
installs them there and runs this. It prints one JSON line per measurement and a summary:
- Parler-TTS (mini-sized: flan-t5-large encoder, 24x1024 decoder, 9-codebook DAC),
  loaded through voxlive's ParlerTTS backend, eager and compiled (static cache +
  torch.compile): time to the first audio chunk and the real-time factor of a streamed
  sentence, the decoder's time per codec frame without streaming (eager: one sentence
  and a batch of `max_batch`; compiled: every generation runs `max_batch` rows), and
  `max_batch` sentences asked at once (first audio of each, batches made);
- the codec's cost of streaming, parler-tts's ParlerTTSStreamer against voxlive's
  CodecStream, on 2, 5 and 10 s sentences (voxlive/bench/codec.py);
- Whisper large-v3-turbo (random weights, transformers, float16): the time to turn a
  3 s utterance into 20 tokens (encoder on the 30 s window, then greedy decoding).
  faster-whisper (CTranslate2) runs the same model with its own kernels; this is the
  PyTorch figure for the same work.
Targets (issue 4, H100-class GPU): Parler real-time factor <= 0.3, first audio <= 150 ms.

`--device cpu --size tiny` runs the same script on tiny models without a GPU: that is how
the tests keep it working between the sessions that have a GPU to run it on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

SENTENCE = "Sure, I can help with that. The weather today looks sunny and warm."


def emit(results: dict[str, Any], key: str, value: Any, out: Path | None) -> None:
    results[key] = value
    print(json.dumps({key: value}), flush=True)
    if out is not None:
        out.write_text(json.dumps(results, indent=2))


def synchronize() -> None:
    """Wait for queued GPU work, so wall-clock timings include it (a no-op on the CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(function: Any) -> float:
    synchronize()
    started = time.perf_counter()
    function()
    synchronize()
    return time.perf_counter() - started


def measure_streaming(tts: Any, runs: int) -> dict[str, float]:
    """First-chunk latency and real-time factor of a streamed sentence, median of runs."""
    firsts, factors, audio_s = [], [], []
    for _ in range(runs):
        synchronize()
        started = time.perf_counter()
        first = None
        samples = 0
        for chunk in tts.synthesize(SENTENCE):
            if first is None:
                first = time.perf_counter() - started
            samples += len(chunk)
        total = time.perf_counter() - started
        seconds = samples / tts.sample_rate
        firsts.append(first or total)
        factors.append(total / max(seconds, 1e-9))
        audio_s.append(seconds)
    return {"first_audio_ms": round(1000 * statistics.median(firsts), 1),
            "real_time_factor": round(statistics.median(factors), 3),
            "audio_s": round(statistics.median(audio_s), 2),
            "first_audio_ms_all": [round(1000 * f, 1) for f in firsts]}


def decoder_frame_ms(tts: Any, frames: int, batch: int = 1) -> float:
    """Generation without the streamer's codec decodes: the decoder's own pace, `batch`
    sentences at once (compiled: the backend's fixed batch, whatever `batch` says)."""
    import threading

    import torch

    from voxlive.backends.parler_batch import SpeechRequest
    from voxlive.backends.parler_stream import CodecStream
    from voxlive.backends.tts_parler import stop_after

    request = SpeechRequest(SENTENCE, tts.encoded_description("default"), threading.Event(),
                            CodecStream(tts.model, tts.chunk_frames))
    rows = tts.max_batch if tts.compiled else batch
    inputs = tts._batch_inputs([request] * rows)

    def run() -> None:
        with torch.inference_mode():
            tts.model.generate(**inputs, stopping_criteria=[stop_after(frames)],
                               max_new_tokens=tts.config.max_new_tokens)

    run()
    return round(1000 * timed(run) / frames, 2)


def measure_concurrent(tts: Any, sentences: int) -> dict[str, Any]:
    """`sentences` callers asking at the same moment, each in its own thread (as calls
    do): when each one's first audio came, when the last one ended, and the batches the
    backend made of them."""
    from concurrent.futures import ThreadPoolExecutor

    before = (tts.batch_stats.batches, tts.batch_stats.items)
    synchronize()
    started = time.perf_counter()

    def speak(_: int) -> tuple[float, float]:
        first = None
        for _chunk in tts.synthesize(SENTENCE):
            if first is None:
                first = time.perf_counter() - started
        return first or 0.0, time.perf_counter() - started

    with ThreadPoolExecutor(sentences) as pool:
        done = list(pool.map(speak, range(sentences)))
    batches = tts.batch_stats.batches - before[0]
    return {"sentences": sentences,
            "first_audio_ms": sorted(round(1000 * first, 1) for first, _ in done),
            "all_done_ms": round(1000 * max(end for _, end in done), 1),
            "mean_batch": round((tts.batch_stats.items - before[1]) / max(1, batches), 2)}


def check_parler(folder: Path, frames: int, compiled: bool, dtype: str, runs: int,
                 device: str, codec_seconds: list[float]) -> dict[str, Any]:
    from voxlive.backends.tts_parler import ParlerTTS
    from voxlive.config import ParlerTts

    config = ParlerTts(backend="parler", model=str(folder), device=device, dtype=dtype,
                       compile=compiled, chunk_s=0.2, max_new_tokens=frames)
    started = time.perf_counter()
    tts = ParlerTTS(config)
    load_s = time.perf_counter() - started
    result = {"load_s": round(load_s, 1), "description": tts.description,
              "chunk_frames": tts.chunk_frames}
    result.update(measure_streaming(tts, runs))
    result["decoder_ms_per_frame"] = decoder_frame_ms(tts, min(frames, 172))
    if tts.max_batch > 1 and not tts.compiled:  # compiled: every run is max_batch rows
        result[f"decoder_ms_per_frame_batch_{tts.max_batch}"] = decoder_frame_ms(
            tts, min(frames, 172), tts.max_batch)
    result["concurrent"] = measure_concurrent(tts, tts.max_batch)
    if codec_seconds:  # the codec does not change with compilation: measured once
        from voxlive.bench.codec import compare

        result["codec_streaming"] = {f"{s:g}s": compare(tts.model, s) for s in codec_seconds}
    del tts
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


WHISPER_SIZES = {
    "mini": dict(d_model=1280, layers=32, heads=20, ffn=5120),  # large-v3-turbo
    "tiny": dict(d_model=64, layers=2, heads=2, ffn=128),
}


def check_whisper(seconds: float, runs: int, device: str, size: str) -> dict[str, Any]:
    """Whisper large-v3-turbo's shape: 32 encoder layers, 4 decoder layers, 1280 wide."""
    import numpy as np
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    w = WHISPER_SIZES[size]
    config = WhisperConfig(vocab_size=51866, num_mel_bins=128, d_model=w["d_model"],
                           encoder_layers=w["layers"], encoder_attention_heads=w["heads"],
                           decoder_layers=4, decoder_attention_heads=w["heads"],
                           encoder_ffn_dim=w["ffn"], decoder_ffn_dim=w["ffn"],
                           max_source_positions=1500, max_target_positions=448)
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).to(device, dtype).eval()
    extractor = WhisperFeatureExtractor(feature_size=128)
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(16_000 * seconds)))
    start_tokens = torch.tensor([[50258, 50259, 50360, 50364]], device=device)

    def transcribe() -> None:
        features = extractor(audio.astype(np.float32), sampling_rate=16_000,
                             return_tensors="pt").input_features
        features = features.to(device, dtype)
        with torch.inference_mode():
            encoded = model.model.encoder(features).last_hidden_state
            ids, past = start_tokens, None
            for _ in range(20):
                out = model(encoder_outputs=(encoded,), past_key_values=past, use_cache=True,
                            decoder_input_ids=ids if past is None else ids[:, -1:])
                past = out.past_key_values
                ids = torch.cat([ids, out.logits[:, -1].argmax(-1, keepdim=True)], dim=-1)

    transcribe()
    times = [timed(transcribe) for _ in range(runs)]
    return {"utterance_s": seconds, "tokens": 20,
            "ms": round(1000 * statistics.median(times), 1),
            "ms_all": [round(1000 * t, 1) for t in times]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the results here (JSON)")
    parser.add_argument("--seconds", type=float, default=3.0, help="audio per sentence")
    parser.add_argument("--dtype", default="bfloat16",
                        choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu")
    parser.add_argument("--size", default="mini", choices=["mini", "tiny"],
                        help="mini: the real models' sizes; tiny: a quick run of the script")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--codec-seconds", type=float, nargs="*", default=[2.0, 5.0, 10.0],
                        help="sentence lengths for the codec streaming comparison "
                        "(voxlive bench codec), on the eager model")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["eager", "compiled", "whisper"], help="parts to leave out")
    args = parser.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check needs a CUDA GPU; torch sees none (--device cpu --size tiny runs "
              "the script without one)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    results: dict[str, Any] = {}
    emit(results, "device", {"device": name, "size": args.size, "torch": torch.__version__},
         args.out)
    from voxlive.harness.random_models import build_parler

    frame_rate = 86
    frames = round(args.seconds * frame_rate) + 9  # + the delay pattern's frames
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = build_parler(Path(tmp) / f"parler-{args.size}", args.size, frames=frames)
        emit(results, "parler_build_s", round(time.perf_counter() - started, 1), args.out)
        # The compiled run last: compilation is the part most likely to fail or run long.
        for part in ("eager", "whisper", "compiled"):
            if part in args.skip:
                continue
            try:
                if part == "whisper":
                    key = "whisper_large_v3_turbo"
                    value = check_whisper(args.seconds, max(args.runs, 5), args.device,
                                          args.size)
                else:
                    key = f"parler_{part}"
                    value = check_parler(folder, frames, part == "compiled", args.dtype,
                                         args.runs, args.device,
                                         args.codec_seconds if part == "eager" else [])
            except Exception as exc:  # report it and go on with the other parts
                traceback.print_exc()
                key = "whisper_large_v3_turbo" if part == "whisper" else f"parler_{part}"
                value = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            emit(results, key, value, args.out)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
