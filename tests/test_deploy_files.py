"""deploy/scale-out and deploy/k8s hold together: every config parses with voxlive's own
loaders, the probes and health checks ask what /healthz answers (readiness: /healthz,
liveness: /healthz?live=1), and the ports and names line up. (The compose file and the
Kubernetes manifests cannot run here; tests/test_e2e_balancer.py runs the HAProxy config.)"""

from __future__ import annotations

import ast
import re

import yaml

from tests.conftest import REPO
from voxlive.config import load_config, parse_config
from voxlive.serving.config import load_serve_config

SCALE_OUT = REPO / "deploy/scale-out"
K8S = REPO / "deploy/k8s"


def test_the_scale_out_configs_load_and_name_each_other() -> None:
    models = load_config(SCALE_OUT / "models.yaml")
    serve = load_serve_config(SCALE_OUT / "serve-models.yaml")
    assert serve.profile in models.profiles
    daemon = models.profile("daemon")
    assert (daemon.stt.backend, daemon.tts.backend, daemon.llm.backend) == (
        "remote", "remote", "openai")
    assert daemon.stt.base_url == daemon.tts.base_url == f"http://127.0.0.1:{serve.port}/v1"
    assert models.server.api_keys  # beyond loopback, keys are required
    assert serve.api_keys  # ... for the model server too, and every daemon sends its key
    for stage in ("stt", "tts", "emotion", "vision"):
        assert getattr(daemon, stage).api_key == serve.api_keys[0], stage


def test_compose_daemons_sit_behind_haproxy_and_check_liveness() -> None:
    compose = yaml.safe_load((SCALE_OUT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"vllm", "models", "daemon-1", "daemon-2", "balancer"} <= set(services)
    haproxy = (SCALE_OUT / "haproxy.cfg").read_text()
    for name in ("daemon-1", "daemon-2"):
        port = re.search(r"--port (\d+)", services[name]["command"]).group(1)
        assert f"server {name} 127.0.0.1:{port} check" in haproxy
        assert services[name]["healthcheck"]["test"][-1].endswith(f":{port}/healthz?live=1")
        assert services[name]["network_mode"] == "host"  # media to the host's own addresses
    assert "uri /healthz " in haproxy and "expect status 200" in haproxy
    assert "--port 8300" in services["models"]["command"]


def test_k8s_probes_and_the_rayservice_import_path() -> None:
    daemon = list(yaml.safe_load_all((K8S / "daemon.yaml").read_text()))
    config_map = next(d for d in daemon if d["kind"] == "ConfigMap")
    parse_config(yaml.safe_load(config_map["data"]["models.yaml"]))
    pod = next(d for d in daemon if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostNetwork"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz?live=1"
    ray = yaml.safe_load((K8S / "models-rayservice.yaml").read_text())
    models_key = {"name": "VOXLIVE_MODELS_KEY",
                  "valueFrom": {"secretKeyRef": {"name": "voxlive", "key": "models-key"}}}
    assert models_key in container["env"]  # the daemons send what the model server checks
    cluster = ray["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        assert models_key in group["template"]["spec"]["containers"][0]["env"]
    (app,) = yaml.safe_load(ray["spec"]["serveConfigV2"])["applications"]
    module, function = app["import_path"].split(":")
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    assert function in {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    assert set(app["args"]) == {"serve_config", "models"}
    vllm = list(yaml.safe_load_all((K8S / "vllm.yaml").read_text()))
    assert {d["kind"] for d in vllm} == {"Deployment", "Service"}
