"""voxlive: a self-hosted, real-time voice assistant daemon built from open models."""

__version__ = "0.1.0"
