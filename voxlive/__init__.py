"""voxlive: a self-hosted, real-time voice assistant daemon built from open models."""

import os

# onnxruntime (Silero VAD, piper) sends usage telemetry unless this is set before it is
# imported; a self-hosted daemon must not phone home.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
