"""The serve-models config: which models.yaml profile's models to serve, and how.

A YAML file of its own (deploy/serve-models.yaml is the example), not a models.yaml
section: it describes a server's replicas and GPUs, which one daemon never needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from voxlive.config.schema import ConfigError, Strict

STAGES = ("stt", "tts", "emotion", "vision")


class Deployment(Strict):
    """One stage's replicas and what each may use (Ray's resources; the local runtime
    runs one of each and reads only the batching fields)."""

    enabled: bool = True
    replicas: int = Field(1, ge=1, le=64)
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0, description="a fraction shares one GPU (0.25: four)")
    max_batch_size: int = Field(8, ge=1, le=256)
    batch_wait_ms: float = Field(5.0, ge=0, le=1000, description="the longest a request "
                                 "waits for others to join its batch")
    max_ongoing_requests: int = Field(32, ge=1)


class ServeModelsConfig(Strict):
    profile: str | None = Field(None, description="the models.yaml profile whose stt, tts, "
                                "emotion and vision are served (default: its default)")
    host: str = "127.0.0.1"
    port: int = Field(8300, ge=0, le=65535)
    api_keys: list[str] = Field(default_factory=list, description="env:NAME or file:PATH "
                                "sources of the keys clients must send (Authorization: "
                                "Bearer KEY); required beyond loopback")
    allow_unauthenticated: bool = Field(False, description="serve beyond loopback without "
                                        "keys (a trusted network only)")
    speech_rate: int = Field(24_000, ge=8_000, description="pcm out of /v1/audio/speech "
                             "(OpenAI's API: 24 kHz)")
    stt: Deployment = Field(default_factory=Deployment)
    tts: Deployment = Field(default_factory=lambda: Deployment(max_batch_size=1))
    emotion: Deployment = Field(default_factory=Deployment)
    vision: Deployment = Field(default_factory=Deployment)

    def stages(self) -> list[str]:
        return [stage for stage in STAGES if getattr(self, stage).enabled]


def load_serve_config(path: str | os.PathLike | None, overrides: dict[str, Any] | None = None
                      ) -> ServeModelsConfig:
    """The file (or the defaults when None), with command-line overrides on top."""
    data: dict[str, Any] = {}
    source = str(path) if path else "serve-models config"
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(source, ["no such file"])
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(source, [f"not valid YAML: {exc}"]) from None
        if not isinstance(data, dict):
            raise ConfigError(source, ["the file must hold a mapping (key: value) at the top"])
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ServeModelsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()]) from None


def ray_loopback_only() -> None:
    """Call before Ray is imported, for a one-node cluster on this machine: its processes
    then talk over 127.0.0.1 only (left alone, Ray's GCS and raylet use the machine's own
    interface address, even with ray.init(_node_ip_address=...)), and Ray sends no usage
    statistics anywhere."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # node IP: loopback
