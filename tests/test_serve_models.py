"""`voxlive serve-models` as one local process (no Ray): voxlive's own model server, with
the real embedded models (faster-whisper tiny.en, piper, prosody, OpenCV), and the daemon's
`remote` backends talking to it. tests/test_serve_models_ray.py runs the same engines as
Ray Serve deployments."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.conftest import requires_espeak
from tests.words import share_found
from voxlive.audio.resample import resample_once
from voxlive.backends.stt_remote import RemoteSTT, encode_wav, multipart
from voxlive.backends.tts_remote import RemoteTTS
from voxlive.config import RemoteStt
from voxlive.config.schema import RemoteTts
from voxlive.harness.speech import espeak
from voxlive.serving.config import ServeModelsConfig
from voxlive.serving.engines import EmotionEngine, SttEngine, TtsEngine, VisionEngine
from voxlive.serving.local_app import BATCH_HEADER, serving

QUESTION = "What is the capital of France?"
LONG = " ".join(f"This is sentence number {n} of a long reply." for n in range(1, 30))


@pytest.fixture(scope="module")
async def model_server(embedded_models: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The embedded profile's models (already loaded for the test run) behind the server;
    a long batch wait so that concurrent requests surely meet."""
    engines = {"stt": SttEngine(embedded_models.stt), "tts": TtsEngine(embedded_models.tts),
               "emotion": EmotionEngine(embedded_models.emotion),
               "vision": VisionEngine(embedded_models.vision)}
    config = ServeModelsConfig(stt={"batch_wait_ms": 200, "max_batch_size": 8})
    async with serving(engines, config, port=0) as url:
        yield url, engines


async def post_audio(http: aiohttp.ClientSession, url: str, audio: np.ndarray,
                     **fields: str) -> tuple[int, dict[str, str], Any]:
    body, content_type = multipart({"model": "stt", **fields}, "file", "a.wav",
                                   encode_wav(audio), "audio/wav")
    async with http.post(url, data=body, headers={"Content-Type": content_type}) as r:
        return r.status, dict(r.headers), await r.json(content_type=None)


@requires_espeak
async def test_remote_tts_speaks_words_through_voxlives_own_server(model_server, tiny_en
                                                                   ) -> None:  # noqa: ANN001
    url, engines = model_server
    tts = RemoteTTS(RemoteTts(backend="remote", base_url=url, timeout_s=30))
    chunks = await asyncio.to_thread(lambda: list(tts.synthesize(QUESTION)))
    audio = np.concatenate(chunks)
    assert len(chunks) > 1 and audio.size > 24_000  # streamed, over a second of speech
    heard = tiny_en.transcribe(resample_once(audio, 24_000, 16_000))
    assert share_found(QUESTION, heard) == 1.0, heard


@requires_espeak
async def test_concurrent_transcriptions_share_a_batch(model_server) -> None:  # noqa: ANN001
    url, engines = model_server
    speech = espeak(QUESTION, 16_000)
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(*[
            post_audio(http, f"{url}/audio/transcriptions", speech,
                       response_format="verbose_json") for _ in range(4)])
    assert all(status == 200 for status, _, _ in answers)
    assert all(share_found(QUESTION, body["text"]) == 1.0 for _, _, body in answers)
    assert max(int(headers[BATCH_HEADER]) for _, headers, _ in answers) > 1
    assert engines["stt"].stats()["largest"] > 1
    # and the daemon's remote STT reads the confidence back from verbose_json
    stt = RemoteSTT(RemoteStt(backend="remote", base_url=url, model="stt", timeout_s=60))
    transcript = await asyncio.to_thread(stt.recognise, speech)
    assert share_found(QUESTION, transcript.text) == 1.0 and 0.3 < transcript.confidence < 1


async def test_a_streamed_synthesis_stops_when_the_client_closes(model_server) -> None:  # noqa: ANN001
    url, engines = model_server
    before = engines["tts"].stats()
    speech = {"input": LONG, "model": "tts-1", "voice": "x"}
    async with aiohttp.ClientSession() as http, http.post(f"{url}/audio/speech",
                                                          json=speech) as response:
        assert response.status == 200
        assert len(await response.content.readany()) > 0
    # leaving the block closed the stream halfway
    for _ in range(300):  # the server notices at its next write
        stats = engines["tts"].stats()
        if stats["active"] == 0 and stats["stopped_early"] > before["stopped_early"]:
            break
        await asyncio.sleep(0.1)
    assert stats["stopped_early"] == before["stopped_early"] + 1
    assert stats["finished"] == before["finished"]
    assert stats["sentences"] - before["sentences"] < 29  # it did not speak the whole reply


async def test_bad_requests_get_openai_style_errors(model_server) -> None:  # noqa: ANN001
    url, _ = model_server
    async with aiohttp.ClientSession() as http:
        status, _, body = await post_audio(http, f"{url}/audio/transcriptions",
                                           np.zeros(1600, np.float32), response_format="srt")
        assert status == 400 and "response_format 'srt'" in body["error"]["message"]
        async with http.post(f"{url}/audio/transcriptions", data=b"x",
                             headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 400 and "multipart" in (await r.json())["error"]["message"]
        for bad, words in (({"input": ""}, "non-empty"), ({"input": "Hi.", "speed": 9}, "speed"),
                           ({"input": "Hi.", "response_format": "mp3"}, "pcm")):
            async with http.post(f"{url}/audio/speech", json=bad) as r:
                assert r.status == 400 and words in (await r.json())["error"]["message"]


@requires_espeak
async def test_emotion_and_vision_answer_json(model_server) -> None:  # noqa: ANN001
    import cv2

    url, _ = model_server
    image = np.zeros((120, 160, 3), np.uint8)
    image[:, :, 0] = 220  # a red frame
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    async with aiohttp.ClientSession() as http:
        status, headers, emotion = await post_audio(http, f"{url}/emotion",
                                                    espeak(QUESTION, 16_000))
        assert status == 200 and emotion["label"] and "prosody" in emotion["backend"]
        body, content_type = multipart({}, "file", "f.png", png.tobytes(), "image/png")
        async with http.post(f"{url}/vision", data=body,
                             headers={"Content-Type": content_type}) as r:
            scene = await r.json()
        assert r.status == 200 and "red" in scene["caption"].lower(), scene
        async with http.get(f"{url}/models") as r:
            assert {m["id"] for m in (await r.json())["data"]} == {
                "stt", "tts", "emotion", "vision"}


@requires_espeak
def test_a_batch_hears_what_the_backend_hears_one_by_one(tiny_en: Any) -> None:
    """One Whisper pass for several utterances (and a second, on the 30 s window, for the
    doubtful ones) gives the words the backend gives each alone."""
    from voxlive.serving.stt_batch import recognise_batch

    sentences = [QUESTION, "How many legs does a spider have?",
                 "Please tell me a short story about a brave little dog."]
    audios = [espeak(s, 16_000) for s in sentences]
    batched = recognise_batch(tiny_en, audios)
    for sentence, transcript in zip(sentences, batched, strict=True):
        assert share_found(sentence, transcript.text) == 1.0, transcript
        assert 0.3 < transcript.confidence <= 1.0
    assert recognise_batch(tiny_en, [np.zeros(0, np.float32)])[0].text == ""


@requires_espeak
async def test_remote_emotion_and_vision_backends_use_the_server(model_server) -> None:  # noqa: ANN001
    from tests.doubles.vllm_double import unused_base_url
    from voxlive.backends.base import BackendError
    from voxlive.config.schema import RemoteModelServer
    from voxlive.emotion.remote_backend import RemoteEmotion
    from voxlive.vision.remote_backend import RemoteVision

    url, _ = model_server
    config = RemoteModelServer(backend="remote", base_url=url, timeout_s=30)
    emotion = RemoteEmotion(config)
    heard = await asyncio.to_thread(emotion.analyse, espeak(QUESTION, 16_000),
                                    emotion.new_speaker())
    assert heard.label and heard.backend.endswith("(remote)") and heard.scores
    image = np.zeros((240, 320, 3), np.uint8)
    image[:, :, 2] = 230  # blue
    scene = await asyncio.to_thread(RemoteVision(config).describe, image)
    assert "blue" in scene.caption.lower() and scene.backend.endswith("(remote)")
    down = RemoteModelServer(backend="remote", base_url=unused_base_url(), timeout_s=2)
    with pytest.raises(BackendError, match="cannot reach the model server") as error:
        await asyncio.to_thread(RemoteVision(down).describe, image)
    assert error.value.stage == "vision" and "vision.base_url" in error.value.message
