"""The private PulseAudio server the local tests use: it lives in voxlive.harness.local_pulse,
shared with `voxlive bench local`."""

from voxlive.harness.local_pulse import PulseServer, PulseUnavailable, Recording, missing_packages

__all__ = ["PulseServer", "PulseUnavailable", "Recording", "missing_packages"]
