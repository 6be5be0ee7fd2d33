"""`voxlive bench vision`: what looking costs.

1. The latency a looking turn adds: take the latest camera frame (a 640x480 YUV frame,
   as WebRTC delivers it), decode it, compare it with the last scene, describe it with
   the profile's vision backend, make the thumbnail; for a new scene and a cached one.
2. The idle cost of carrying a video track: the daemon runs as its own process
   (`voxlive serve`) and its CPU time and memory are read from /proc while callers stay
   connected, first audio-only, then with a camera track, and compared per call.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import numpy as np

from voxlive.bench.latency import percentiles
from voxlive.models import load_or_explain

HOLD_S = 15.0
WARM_UP_S = 4.0


def test_images() -> list[np.ndarray]:
    """Two different real photographs (scikit-image ships them), or synthetic scenes."""
    try:
        from skimage import data

        return [data.astronaut(), data.coffee()]
    except ImportError:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(2)]


def as_webrtc_frame(image: np.ndarray) -> Any:
    import av
    import cv2

    frame = av.VideoFrame.from_ndarray(cv2.resize(image, (640, 480)), format="rgb24")
    return frame.reformat(format="yuv420p")


def look_latency(config: Any, models: Any, repeats: int) -> dict[str, Any]:
    from voxlive.session import CallSession

    session = CallSession(models, config, 0.5, send_event=lambda event: None)
    frames = [as_webrtc_frame(image) for image in test_images()]
    fresh, cached = [], []
    for i in range(repeats):
        session.camera.update(frames[i % 2])  # alternate: every look is a new scene
        started = time.perf_counter()
        _, was_cached = session.camera.describe_latest()
        fresh.append((time.perf_counter() - started) * 1000)
        assert not was_cached
        started = time.perf_counter()
        _, was_cached = session.camera.describe_latest()  # the same frame again
        cached.append((time.perf_counter() - started) * 1000)
        assert was_cached
    return {"new_scene_ms": percentiles(fresh), "same_scene_ms": percentiles(cached)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def hold_calls(url: str, pid: int, calls: int, camera: np.ndarray | None
                     ) -> dict[str, float]:
    from voxlive.harness.client import CallClient

    clients = [CallClient(url, camera=camera) for _ in range(calls)]
    try:
        for client in clients:
            await client.connect()
        await asyncio.sleep(WARM_UP_S)
        cpu, rss, started = _cpu_seconds(pid), _rss_mb(pid), time.monotonic()
        await asyncio.sleep(HOLD_S)
        elapsed = time.monotonic() - started
        return {"cpu_cores": (_cpu_seconds(pid) - cpu) / elapsed, "rss_mb": _rss_mb(pid),
                "rss_before_mb": rss}
    finally:
        for client in clients:
            await client.close()


async def idle_cost(config_path: str | None, profile: str, calls: int) -> dict[str, Any]:
    import aiohttp

    port = _free_port()
    command = [sys.executable, "-m", "voxlive", "serve", "--port", str(port),
               "--profile", profile]
    if config_path:
        command += ["--config", config_path]
    daemon = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(120):
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.5)
            else:
                raise RuntimeError("the daemon did not start within 60 s")
        idle = await hold_calls(url, daemon.pid, 0, None)
        audio = await hold_calls(url, daemon.pid, calls, None)
        video = await hold_calls(url, daemon.pid, calls, test_images()[0])
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
    per_call = {
        "audio_only_cpu_cores": round((audio["cpu_cores"] - idle["cpu_cores"]) / calls, 4),
        "with_video_cpu_cores": round((video["cpu_cores"] - idle["cpu_cores"]) / calls, 4),
    }
    per_call["video_track_cpu_cores"] = round(
        per_call["with_video_cpu_cores"] - per_call["audio_only_cpu_cores"], 4)
    return {"calls": calls, "hold_s": HOLD_S, "daemon_idle": idle, "audio_only": audio,
            "with_video": video, "per_call": per_call}


def run_vision_bench(config: Any, config_path: str | None, profile_name: str | None,
                     calls: int, as_json: bool) -> int:
    name, models = load_or_explain(config, profile_name)
    if models.vision is None:
        print(f"voxlive bench: profile {name} has no vision stage", file=sys.stderr)
        return 2
    result = {"benchmark": "vision", "profile": name, "backend": models.vision.description,
              "look": look_latency(config, models, repeats=20),
              "idle_cost": asyncio.run(idle_cost(config_path, name, calls))}
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    look, cost = result["look"], result["idle_cost"]["per_call"]
    print(f"vision, profile {name}, backend {result['backend']}")
    for key, stats in look.items():
        print(f"  look, {key:16} p50 {stats['p50']:7.1f} ms  p95 {stats['p95']:7.1f} ms")
    print(f"  CPU per call: audio only {cost['audio_only_cpu_cores']:.3f} cores, with a "
          f"640x480 camera track {cost['with_video_cpu_cores']:.3f} cores")
    print(json.dumps({"look": look, "per_call": cost}))
    return 0
