"""Faults injected into one call (an STT or a TTS exception): it reports and listens
again, and another call never notices; and /metrics shows the process's vitals.
STT (faster-whisper) and TTS (espeak-ng) are real, the LLM is the vLLM test double."""

from __future__ import annotations

import aiohttp

from tests.conftest import requires_espeak
from voxlive.harness.client import CallClient

pytestmark = requires_espeak


# --- faults injected: the call goes on or ends cleanly, other calls are unaffected ---------


class FailingStt:
    """Wraps the real STT; raises for one call's audio (an injected fault)."""

    def __init__(self, real: object):
        self.real = real

    def recognise(self, audio):  # noqa: ANN001, ANN201
        raise RuntimeError("injected STT fault")

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.real, name)


class FailingTts(FailingStt):
    """Wraps the real TTS; synthesis raises (an injected fault)."""

    def synthesize(self, text, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        raise RuntimeError("injected TTS fault")


async def test_stt_and_tts_faults_stay_in_their_call(double_server) -> None:  # noqa: ANN001
    from dataclasses import replace

    from voxlive.harness.speech import espeak

    url, daemon = double_server
    faulty, healthy = CallClient(url), CallClient(url)
    try:
        await faulty.connect()
        await healthy.connect()
        call = next(c for c in daemon.calls.values())
        session = call.session
        session.models = replace(session.models, stt=FailingStt(session.models.stt))
        faulty.mic.say(espeak("What is the capital of France?", 48_000))
        error = await faulty.wait_for(lambda e: e["type"] == "error", timeout=30)
        assert error["stage"] == "stt" and "injected STT fault" in error["message"]
        await faulty.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=10, start=faulty.events.index(error))

        # TTS fails next in the same call: reported, and the call still listens
        session.models = replace(session.models, stt=session.models.stt.real,
                                 tts=FailingTts(session.models.tts))
        mark = len(faulty.events)
        faulty.mic.say(espeak("What is the capital of France?", 48_000))
        error = await faulty.wait_for(lambda e: e["type"] == "error", timeout=30, start=mark)
        assert "injected TTS fault" in error["message"]
        await faulty.wait_for(lambda e: e["type"] == "state" and e["state"] == "listening",
                              timeout=15, start=faulty.events.index(error))

        # the other call never noticed
        healthy.mic.say(espeak("What is the capital of France?", 48_000))
        reply = await healthy.wait_for(
            lambda e: e["type"] == "assistant_text" and e["final"], timeout=45)
        assert "Paris" in reply["text"]
        assert not any(e["type"] == "error" for e in healthy.events)
        assert len(daemon.calls) == 2
    finally:
        await faulty.close()
        await healthy.close()


async def test_metrics_show_loop_lag_threads_and_connections(double_server) -> None:  # noqa: ANN001
    url, _ = double_server
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
        text = await r.text()
    for name in ("voxlive_loop_lag_seconds", "voxlive_threads", "voxlive_open_fds",
                 "voxlive_stuck_calls", "voxlive_http_connections_open"):
        assert f"\n{name} " in text, name
