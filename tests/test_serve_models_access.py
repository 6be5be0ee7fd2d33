"""The model server exposed as the daemon is, and guarded as the daemon is: API keys
beyond loopback, the connection guard, a body deadline, and uploads whose decoded size
is refused before it takes memory. No model: the server's own routes answer."""

from __future__ import annotations

import asyncio
import io
import wave

import aiohttp
import numpy as np
import pytest

from tests.slow_client import answer_to_unfinished_body
from voxlive.config.limits import ServerLimits
from voxlive.config.schema import ConfigError
from voxlive.serving import local_app, wire
from voxlive.serving.access import ModelServerAccess
from voxlive.serving.config import ServeModelsConfig

KEY = "models-key-" + "m" * 24
ENV = {"VOXLIVE_MODELS_KEY": KEY}


def test_beyond_loopback_the_server_needs_keys() -> None:
    with pytest.raises(ConfigError, match="beyond loopback"):
        ModelServerAccess.from_config(ServeModelsConfig(host="0.0.0.0"), environ={})
    open_one = ModelServerAccess.from_config(
        ServeModelsConfig(host="0.0.0.0", allow_unauthenticated=True), environ={})
    assert open_one.refusal("/v1/models", None) is None
    with pytest.raises(ConfigError, match="the variable is not set"):
        ModelServerAccess.from_config(ServeModelsConfig(api_keys=["env:NOPE"]), environ={})
    with pytest.raises(ConfigError, match="beyond loopback"):  # Ray Serve on a cluster
        ModelServerAccess.from_config(ServeModelsConfig(), beyond_loopback=True, environ={})
    keyed = ModelServerAccess.from_config(
        ServeModelsConfig(host="0.0.0.0", api_keys=["env:VOXLIVE_MODELS_KEY"]), environ=ENV)
    assert keyed.refusal("/v1/vision", None).status == 401
    assert keyed.refusal("/v1/vision", "Bearer " + "x" * 35).status == 403
    assert keyed.refusal("/v1/vision", f"Bearer {KEY}") is None
    assert keyed.refusal("/healthz", None) is None


async def test_a_keyed_server_answers_only_with_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXLIVE_MODELS_KEY", KEY)
    config = ServeModelsConfig(api_keys=["env:VOXLIVE_MODELS_KEY"])
    async with local_app.serving({}, config, port=0) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/models") as r:
            assert r.status == 401
            assert (await r.json())["error"]["type"] == "authentication_error"
        async with http.get(f"{url}/models", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 403
        async with http.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}) as r:
            assert r.status == 200 and (await r.json())["data"] == []
        async with http.get(url.removesuffix("/v1") + "/healthz") as r:
            assert r.status == 200


def test_a_remote_backend_reads_its_key_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from voxlive.backends.base import BackendError
    from voxlive.serving.client import ModelServerClient

    monkeypatch.setenv("VOXLIVE_MODELS_KEY", KEY)
    client = ModelServerClient("vision", "http://127.0.0.1:8300/v1", "vision",
                               "env:VOXLIVE_MODELS_KEY", 5)
    assert client.api_key == KEY
    assert ModelServerClient("vision", "http://127.0.0.1:8300/v1", "vision", "EMPTY",
                             5).api_key == "EMPTY"
    monkeypatch.setenv("VLLM_KEY", "token-abc123")  # a key sent is the other server's choice
    assert ModelServerClient("vision", "http://127.0.0.1:8300/v1", "vision",
                             "env:VLLM_KEY", 5).api_key == "token-abc123"
    with pytest.raises(BackendError, match="api_key: .*not set") as error:
        ModelServerClient("emotion", "http://127.0.0.1:8300/v1", "emotion", "env:NOPE", 5)
    assert error.value.stage == "emotion"


async def test_silent_and_slow_clients_are_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_app, "LIMITS", ServerLimits(header_timeout_s=0.3,
                                                          body_timeout_s=0.3))
    async with local_app.serving({"tts": object()}, ServeModelsConfig(), port=0) as url:
        host, port = url.removeprefix("http://").removesuffix("/v1").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))  # sends nothing
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the deadline
        writer.close()
        answer = await answer_to_unfinished_body(url, "/v1/audio/speech", "application/json",
                                                 b'{"input": ')
        assert answer.startswith(b"HTTP/1.1 408"), answer


def _wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.zeros(int(seconds * rate), "<i2").tobytes())
    return out.getvalue()


def test_uploads_too_long_or_too_large_to_decode_are_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import av
    import cv2

    monkeypatch.setattr(wire, "MAX_AUDIO_S", 2)
    assert wire.decode_audio(_wav(1.5)).size == 24_000
    with pytest.raises(wire.WireError, match="longer than 2 s") as error:
        wire.decode_audio(_wav(2.5))
    assert error.value.status == 413
    ogg = io.BytesIO()  # compressed audio goes through PyAV: cut while decoding
    with av.open(ogg, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48_000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 48_000), np.int16), "s16", "mono")
        frame.rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode(frame), *stream.encode(frame),
                       *stream.encode(None)]:
            container.mux(packet)
    with pytest.raises(wire.WireError, match="longer than 2 s"):
        wire.decode_audio(ogg.getvalue())
    ok, png = cv2.imencode(".png", np.zeros((5000, 4000, 3), np.uint8))  # 80 KB, 60 MB decoded
    with pytest.raises(wire.WireError, match="4000x5000") as error:
        wire.decode_image(png.tobytes())
    assert error.value.status == 413
    ok, jpeg = cv2.imencode(".jpg", np.full((30, 40, 3), 200, np.uint8))
    assert wire.image_size(jpeg.tobytes()) == (40, 30)
    assert wire.decode_image(jpeg.tobytes()).shape == (30, 40, 3)
    with pytest.raises(wire.WireError, match="not a JPEG or PNG"):
        wire.decode_image(b"GIF89a" + bytes(40))
