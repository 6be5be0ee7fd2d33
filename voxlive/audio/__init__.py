"""Audio plumbing: sample-rate conversion, fixed-size framing, VAD, the paced output buffer."""
