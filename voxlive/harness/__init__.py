"""What both the tests and the benchmarks drive voxlive with, kept apart from the benchmarks.

- client: a WebRTC caller (aiortc) that plays audio into a call and records the reply
- speech: espeak-ng speech, silence and WAV files
- real_speech: human speech with reference transcripts, from the package registries
- turn_corpus: spoken turns with known word times, for end-of-turn tests and benchmarks
- random_models: randomly initialised models of the GPU stack's architectures
- local_pulse: a private PulseAudio server with virtual devices, for `voxlive local`
- local_echo: a reply's echo through a synthetic room, and what a canceller leaves

Nothing here imports voxlive.bench or voxlive.cli: benchmarks import the harness, never
the other way round (tests/test_imports.py checks).
"""
