"""The `voxlive` command: serve, doctor, bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from voxlive.config import ConfigError, check_profile, load_config
from voxlive.models import load_or_explain

EPILOG = """\
examples:
  voxlive serve                       # embedded profile on http://127.0.0.1:8080
  voxlive serve --profile gpu         # the GPU stack (vLLM server at the profile's base_url)
  voxlive serve --profile gpu --spawn-llm   # ... and start/stop that vLLM server too
  voxlive serve-models --ray          # STT/TTS/emotion/vision as Ray Serve deployments
  voxlive doctor                      # can each stage of the profile load here?
  voxlive local                       # talk through this machine's microphone and speaker
  voxlive local --list-devices        # sound devices for --input-device/--output-device
  voxlive bench latency --turns 5     # voice-to-voice latency over real WebRTC
  voxlive bench bargein               # barge-in latency and false interruptions
  voxlive bench vision                # what looking through the camera costs
  voxlive bench emotion               # what the emotion stage costs
  voxlive bench local                 # voxlive local: latency, barge-in, echo reduction
  voxlive bench codec                 # Parler-TTS streaming: the codec's cost per chunk
  voxlive bench quality               # hears right, answers right, briefly (32 dialogues)
  voxlive bench turns                 # end of turn: premature commits, commit delay
  voxlive bench soak --cycles 500     # does anything grow across calls?
  voxlive bench capacity --compare   # calls per core: gaps, CPU, RSS, queueing, knee
  voxlive bench fuzz --offers 10000 --messages 10000   # fuzz /offer and the events channel
  voxlive bench tools                 # what a tool round (MCP) adds; the filler's first audio
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxlive",
        description="A self-hosted, real-time voice assistant built from open models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="models.yaml to use (default: ./models.yaml, "
                        "$VOXLIVE_CONFIG, or the one in the repository)")
    common.add_argument("--profile", help="model profile from models.yaml (default: its "
                        "default_profile, normally 'embedded')")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common],
                                help="run the daemon and serve the call page")
    serve.add_argument("--host", help="address to listen on (default from models.yaml: "
                       "127.0.0.1; a loopback host also keeps WebRTC on loopback)")
    serve.add_argument("--port", type=int, help="TCP port (default from models.yaml: 8080)")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve https with this certificate "
                       "(chain) file; browsers grant the microphone only on https or localhost")
    serve.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    serve.add_argument("--kiosk", action="store_true",
                       help="the page calls by itself and reconnects (unattended screens)")
    serve.add_argument("--spawn-llm", action="store_true",
                       help="start `vllm serve MODEL` for the profile's openai LLM at its "
                       "base_url, wait until healthy, stop it on exit ($VOXLIVE_VLLM_COMMAND "
                       "replaces `vllm serve`)")

    from voxlive.serving.cli import add_parser as add_serve_models

    add_serve_models(commands, common)  # voxlive serve-models (voxlive/serving)
    commands.add_parser("doctor", parents=[common],
                        help="check that each stage of the profile loads, and time it")

    local = commands.add_parser("local", parents=[common],
                                help="talk through this machine's microphone and speaker")
    local.add_argument("--input-device", help="microphone: index or part of its name "
                       "(default: the system's default input; see --list-devices)")
    local.add_argument("--output-device", help="speaker: index or part of its name "
                       "(default: the system's default output)")
    local.add_argument("--list-devices", action="store_true",
                       help="list the sound devices and exit")
    local.add_argument("--duration", type=float, metavar="SECONDS",
                       help="stop after this many seconds (default: until Ctrl-C)")
    local.add_argument("--half-duplex", action="store_true",
                       help="do not listen while speaking (no barge-in): open speakers "
                       "without echo cancellation")
    local.add_argument("--audio-latency", type=float, metavar="SECONDS",
                       help="PortAudio buffer (default: the device's low latency); "
                       "raise it if the voice crackles")
    local.add_argument("--no-echo-cancellation", action="store_true",
                       help="headset: full duplex without cancelling the speaker's echo")
    local.add_argument("--camera", metavar="INDEX",
                       help="camera index (or video source) when the profile can see "
                       "(default 0)")
    local.add_argument("--no-camera", action="store_true", help="do not open the camera")

    bench = commands.add_parser("bench", help="benchmarks that print figures (and JSON)")
    bench_kinds = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    latency = bench_kinds.add_parser(
        "latency", parents=[common], help="voice-to-voice latency over real WebRTC (loopback)")
    latency.add_argument("--turns", type=int, default=5, help="questions to ask (default 5)")
    latency.add_argument("--json", action="store_true", help="print JSON only")
    latency.add_argument("--transport", choices=("webrtc", "realtime-ws"), default="webrtc",
                         help="realtime-ws: every question over WebRTC and over the "
                         "Realtime API's WebSocket, side by side")
    latency.add_argument("--compare-speculative", action="store_true",
                         help="run twice: speculative endpointing on, then off")
    bargein = bench_kinds.add_parser(
        "bargein", parents=[common],
        help="barge-in latency and false interruptions (echo, noises, backchannels)")
    bargein.add_argument("--trials", type=int, default=6, help="barge-in trials (default 6)")
    bargein.add_argument("--json", action="store_true", help="print JSON only")
    bargein.add_argument("--chromium", type=int, default=0, metavar="TRIALS",
                         help="also this many barge-in trials from headless Chromium")
    vision = bench_kinds.add_parser(
        "vision", parents=[common],
        help="latency a looking turn adds, and the CPU a camera track costs per call")
    vision.add_argument("--calls", type=int, default=2, help="concurrent calls (default 2)")
    vision.add_argument("--json", action="store_true", help="print JSON only")
    emotion = bench_kinds.add_parser(
        "emotion", parents=[common],
        help="cost of the emotion stage per second of audio, against STT's")
    emotion.add_argument("--repeats", type=int, default=5, help="runs per sentence (default 5)")
    emotion.add_argument("--json", action="store_true", help="print JSON only")
    local_bench = bench_kinds.add_parser(
        "local", parents=[common],
        help="voxlive local over PulseAudio virtual devices: voice-to-voice and barge-in "
        "latency, and echo reduction (ERLE)")
    local_bench.add_argument("--turns", type=int, default=3, help="questions (default 3)")
    local_bench.add_argument("--trials", type=int, default=3,
                             help="barge-in trials (default 3)")
    local_bench.add_argument("--json", action="store_true", help="print JSON only")
    quality = bench_kinds.add_parser(
        "quality", parents=[common],
        help="spoken question set over real WebRTC: STT word error rate (synthetic and "
        "real speech), answers correct, reply length, bookkeeping leaks, latency")
    quality.add_argument("--limit", type=int, default=None,
                         help="ask only the first N dialogues (default: all)")
    quality.add_argument("--real", type=int, default=5, metavar="N",
                         help="real recordings per corpus for the STT error rate (default 5; "
                         "0: none; fetch them first: python -m voxlive.harness.real_speech "
                         "fetch)")
    quality.add_argument("--json", action="store_true", help="print JSON only")
    turns = bench_kinds.add_parser(
        "turns", parents=[common], help="end of turn: thinking pauses and finished questions "
        "over WebRTC, per turn detector")
    turns.add_argument("--turns", type=int, default=42, help="spoken turns (default 42)")
    turns.add_argument("--detectors", default="none,smart-turn+text",
                       help="comma-separated: none, smart-turn, text, smart-turn+text")
    turns.add_argument("--signals-only", action="store_true",
                       help="only judge each signal offline at the pauses (no calls)")
    turns.add_argument("--json", action="store_true", help="print JSON only")
    soak = bench_kinds.add_parser(
        "soak", parents=[common],
        help="call cycles (some abandoned) and a concurrent load: RSS, threads, fds, tasks "
        "and live calls before/during/after, and audio gaps")
    soak.add_argument("--cycles", type=int, default=100, help="call cycles (default 100)")
    soak.add_argument("--abandon-every", type=int, default=5,
                      help="every Nth caller goes silent without hanging up (default 5; 0: none)")
    soak.add_argument("--concurrent", type=int, default=4,
                      help="calls at once in the load phase (default 4)")
    soak.add_argument("--no-audio-timeout", type=float, default=3.0,
                      help="the daemon's no-audio deadline during the run (default 3 s)")
    soak.add_argument("--idle-sockets", type=int, default=0,
                      help="then hold this many idle half-sent sockets (from another "
                      "process) and time /healthz (default 0: skip)")
    soak.add_argument("--fd-limit", type=int,
                      help="lower this process's open-file limit first (e.g. 1024, systemd's)")
    soak.add_argument("--json", action="store_true", help="print JSON only")
    capacity = bench_kinds.add_parser(
        "capacity", parents=[common],
        help="ramp simulated calls on a daemon pinned to one core: gaps, CPU and RSS per "
        "call, voice-to-voice and queueing, batch sizes, the knee (bench/capacity.py)")
    capacity.add_argument("--mode", default="listen", choices=("listen", "talk", "models"),
                          help="listen: noise in, no turns (the audio path); talk: "
                          "conversations with barge-ins; models: N requests at once to "
                          "the shared LLM and STT, fair against serial, then N sentences to "
                          "the voice (default listen)")
    capacity.add_argument("--levels", default="1,4,8,12,16",
                          help="calls per level, comma-separated (default 1,4,8,12,16)")
    capacity.add_argument("--hold", type=float, default=20.0,
                          help="seconds measured per level (default 20)")
    capacity.add_argument("--server-core", type=int, default=0,
                          help="core the daemon is pinned to (default 0; -1: not pinned)")
    capacity.add_argument("--compare", action="store_true",
                          help="also a daemon with the fixes off, interleaved level by level")
    capacity.add_argument("--json", action="store_true", help="print JSON only")
    fuzz = bench_kinds.add_parser(
        "fuzz", parents=[common],
        help="seeded fuzzing of /offer bodies and events messages (loopback only)")
    fuzz.add_argument("--offers", type=int, default=1000, help="offer bodies (default 1000)")
    fuzz.add_argument("--messages", type=int, default=1000,
                      help="events channel messages (default 1000)")
    fuzz.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    fuzz.add_argument("--seconds", type=float, default=600,
                      help="time bound of each part (default 600)")
    fuzz.add_argument("--json", action="store_true", help="print JSON only")
    tools = bench_kinds.add_parser(
        "tools", parents=[common],
        help="latency a tool round (MCP) adds to a turn, and the filler's time to first audio")
    tools.add_argument("--turns", type=int, default=5, help="questions per variant (default 5)")
    tools.add_argument("--llm-url", default=None,
                       help="an OpenAI-compatible server with tool calling (default: the vLLM "
                       "test double of a checkout)")
    tools.add_argument("--json", action="store_true", help="print JSON only")
    codec = bench_kinds.add_parser(
        "codec", help="Parler-TTS streaming: what decoding audio chunk by chunk costs, "
        "parler-tts's streamer against voxlive's (needs the gpu extra)")
    codec.add_argument("--seconds", type=float, nargs="+", default=[2.0, 5.0],
                       help="sentence lengths (default 2 5)")
    codec.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    codec.add_argument("--json", action="store_true", help="print JSON only")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aioice", "aiortc", "aiohttp.access", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "bench" and args.bench == "codec":  # models of its own: no config
        from voxlive.bench.codec import run_codec_bench

        return run_codec_bench(args.seconds, args.device, args.json)
    try:
        config = load_config(args.config)
        if args.command == "serve":
            return serve(config, args)
        if args.command == "doctor":
            return doctor(config, args.profile)
        if args.command == "serve-models":
            from voxlive.serving.cli import run_serve_models

            return run_serve_models(config, args)
        if args.command == "local":
            from voxlive.local_cli import run_local

            return run_local(config, args.profile, args)
        if args.command == "bench" and args.bench == "local":
            from voxlive.bench.local import run_local_bench

            return run_local_bench(config, args.profile, args.turns, args.trials, args.json)
        if args.command == "bench" and args.bench == "emotion":
            from voxlive.bench.emotion import run_emotion_bench

            return run_emotion_bench(config, args.profile, args.repeats, args.json)
        if args.command == "bench" and args.bench == "vision":
            from voxlive.bench.vision import run_vision_bench

            return run_vision_bench(config, args.config, args.profile, args.calls, args.json)
        if args.command == "bench" and args.bench == "quality":
            from voxlive.bench.quality import run_quality_bench

            return run_quality_bench(config, args.profile, args.limit, args.real, args.json)
        if args.command == "bench" and args.bench == "turns":
            from voxlive.bench.turns import run_turns_bench

            return run_turns_bench(config, args.profile, args.turns, args.json,
                                   args.detectors.split(","), args.signals_only)
        if args.command == "bench" and args.bench == "soak":
            from voxlive.bench.soak import run_soak_bench

            return run_soak_bench(config, args.profile, args.cycles, args.abandon_every,
                                  args.concurrent, args.no_audio_timeout, args.json,
                                  args.idle_sockets, args.fd_limit)
        if args.command == "bench" and args.bench == "capacity":
            from voxlive.bench.capacity import run_capacity_bench

            return run_capacity_bench(
                config, args.profile, args.mode, [int(n) for n in args.levels.split(",")],
                args.hold, args.compare, None if args.server_core < 0 else args.server_core,
                args.json)
        if args.command == "bench" and args.bench == "fuzz":
            from voxlive.bench.fuzz import run_fuzz_bench

            return run_fuzz_bench(config, args.profile, args.offers, args.messages, args.seed,
                                  args.seconds, args.json)
        if args.command == "bench" and args.bench == "tools":
            from voxlive.bench.tools import run_tools_bench

            return run_tools_bench(config, args.profile, args.turns, args.llm_url, args.json)
        if args.command == "bench" and args.bench == "bargein":
            from voxlive.bench.bargein import run_bargein_bench

            return run_bargein_bench(config, args.profile, args.trials, args.json,
                                     args.chromium)
        if args.command == "bench":
            from voxlive.bench.latency import run_latency_bench

            return run_latency_bench(config, args.profile, args.turns, args.json,
                                     args.compare_speculative, args.transport)
    except ConfigError as exc:
        print(f"voxlive: configuration problem:\n{exc}", file=sys.stderr)
        return 2
    return 2


def serve(config, args: argparse.Namespace) -> int:  # noqa: ANN001
    """With --spawn-llm, the vLLM server runs (and is stopped) around the daemon."""
    if not getattr(args, "spawn_llm", False):
        return serve_daemon(config, args)
    from voxlive.backends.llm_process import SpawnError, spawned_llm

    try:
        with spawned_llm(config, args.profile):
            return serve_daemon(config, args)
    except SpawnError as exc:
        print(f"voxlive: --spawn-llm: {exc}", file=sys.stderr)
        return 1


def serve_daemon(config, args: argparse.Namespace) -> int:  # noqa: ANN001
    import contextlib
    import ssl

    from voxlive.server.app import Daemon, serve_forever, tls_context
    from voxlive.server.auth import AuthPolicy, AuthSetupError

    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    server = config.server
    try:  # before the models load: a missing key fails at once
        auth = AuthPolicy.from_settings(
            host, server.api_keys, server.metrics_keys, server.allowed_origins,
            server.allowed_hosts, server.call_token_ttl_s, server.allow_unauthenticated)
    except AuthSetupError as exc:
        print(f"voxlive serve: {exc}", file=sys.stderr)
        return 2
    context = None
    if bool(args.tls_cert) != bool(args.tls_key):
        print("voxlive serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.tls_cert:
        try:
            context = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            print(f"voxlive serve: cannot use the TLS certificate: {exc}", file=sys.stderr)
            return 2
    name, models = load_or_explain(config, args.profile)
    daemon = Daemon(config, name, models, host=host, kiosk=args.kiosk, owns_models=True,
                    auth=auth)
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if context else "http"
    print(f"voxlive ({name} profile) is listening: open {scheme}://{shown}:{port}/ and press "
          "Call", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(daemon, port, context))
    return 0


def doctor(config, profile_name: str | None) -> int:  # noqa: ANN001
    from voxlive.backends.base import BackendError
    from voxlive.backends.loader import BUILDERS, load_stage

    name = profile_name or config.default_profile
    profile = config.profile(name)
    print(f"profile {name}:")
    problems = check_profile(config, name)
    for problem in problems:
        print(f"  problem: {problem}")
    ok = not problems
    for stage in BUILDERS:
        stage_config = getattr(profile, stage)
        if stage_config is None:
            continue
        model = getattr(stage_config, "model", None) or getattr(stage_config, "voice", "")
        line = f"  {stage:4} {stage_config.backend:15} {model}"
        if problems:
            print(f"{line}  (not loaded)")
            continue
        started = time.perf_counter()
        try:
            backend, seconds = load_stage(stage, profile)
            print(f"{line}  loads in {seconds:.2f} s: "
                  f"{getattr(backend, 'description', 'none')}")
            if stage == "llm":
                asyncio.run(backend.aclose())
        except BackendError as exc:
            ok = False
            print(f"{line}  FAILED after {time.perf_counter() - started:.2f} s: {exc.message}")
    from voxlive.local_cli import describe_echo_handling

    print(f"  voxlive local: {describe_echo_handling()}")
    print("ok" if ok else "not ready: fix the problems above")
    return 0 if ok else 1
