"""`voxlive serve-models`: its arguments and how it starts (cli.py only hands over)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from voxlive.config import ConfigError, check_profile


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "serve-models", parents=[common],
        help="serve the profile's STT, TTS, emotion and vision models over OpenAI-style HTTP "
             "(one process, or Ray Serve deployments with --ray)")
    parser.add_argument("--serve-config", metavar="YAML",
                        help="replicas, GPUs and batching per stage (deploy/serve-models.yaml)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8300)")
    parser.add_argument("--ray", action="store_true",
                        help="run as Ray Serve deployments (pip install 'voxlive[serve]')")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="join this Ray cluster (default: start a one-node one here)")


def run_serve_models(config: Any, args: argparse.Namespace) -> int:
    from voxlive.serving.config import load_serve_config

    serve_config = load_serve_config(args.serve_config, {
        "host": args.host, "port": args.port, "profile": args.profile})
    from voxlive.serving.access import ModelServerAccess

    ModelServerAccess.from_config(serve_config)  # keys beyond loopback, before any model loads
    name = serve_config.profile or config.default_profile
    profile = config.profile(name)
    stages = [s for s in serve_config.stages() if getattr(profile, s, None) is not None]
    problems = [p for p in check_profile(config, name)
                if any(f".{stage}" in p for stage in stages)]
    if problems:
        raise ConfigError("models.yaml", problems)
    for stage in serve_config.stages():
        if stage not in stages:  # the profile has no such stage (no vision, no emotion)
            getattr(serve_config, stage).enabled = False
    if args.ray:
        if not args.ray_address:
            from voxlive.serving.config import ray_loopback_only

            ray_loopback_only()
        try:
            from voxlive.serving.ray_app import run
        except ImportError as exc:
            print(f"voxlive serve-models --ray: Ray Serve is not installed ({exc}); "
                  "pip install 'voxlive[serve]'", file=sys.stderr)
            return 2
        run(serve_config, profile, args.ray_address)
        return 0
    from voxlive.backends.base import BackendError
    from voxlive.serving.engines import load_engine
    from voxlive.serving.local_app import serve_forever

    try:
        engines = {stage: load_engine(stage, profile, serve_config.speech_rate)
                   for stage in stages}
    except BackendError as exc:
        raise ConfigError("models.yaml", [f"profiles.{name}.{exc.stage}: {exc.message}"]
                          ) from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(engines, serve_config))
    return 0
