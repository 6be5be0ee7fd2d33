"""`voxlive serve-models`: the model stages (STT, TTS, emotion, vision) as a server.

The daemon stays the per-call edge (WebRTC, VAD, turn-taking, barge-in: CPU work, one call
on one daemon); the models move here, shared by many daemons and batched across their
calls. The HTTP face is OpenAI's where OpenAI has one (`/v1/audio/transcriptions`, streamed
`/v1/audio/speech`), so the daemon's `remote` backends (and anyone's OpenAI client) use it
unchanged; emotion and vision get small JSON endpoints.

Two runtimes, one code path: `engines.py` does the model work (plain blocking code, in
batches), `wire.py` parses and shapes the HTTP; `local_app.py` serves them from one
aiohttp process (one machine, no Ray), `ray_app.py` as Ray Serve deployments with dynamic
batching, replicas and fractional GPUs from the config (`config.py`).
"""
