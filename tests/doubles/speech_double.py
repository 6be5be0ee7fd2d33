"""SpeechDouble: a TEST DOUBLE of an OpenAI-compatible streaming speech server.

It is not a TTS and runs no model: it stands for "any server that speaks OpenAI's
POST /v1/audio/speech" (OpenAI itself, Kokoro-FastAPI, speaches, ...), which cannot run
here, so the `remote` TTS backend is tested against the API rather than against voxlive's
own server only. It answers like those servers on the wire: a JSON body {"model", "voice",
"input", "response_format": "pcm", "speed"} gets a chunked stream of raw 16-bit mono
little-endian PCM at 24 kHz (a tone whose length follows the text: `seconds_per_char`),
sent in `chunk_s` pieces every `chunk_delay_s`, after `first_chunk_delay_s`. Other
formats get OpenAI's 400 error body; `fail_status` answers every request with that status;
`cut_after_chunks` drops the connection mid-stream (a server, or a replica, that dies).

It listens on 127.0.0.1 only. It records each request body (`requests`), counts streams
the client closed before the end (`aborted`, and `abort_event` is set) and streams sent
whole (`completed`), and the bytes it sent (`sent_bytes`).

    async with SpeechDouble(first_chunk_delay_s=0.5) as server:
        server.base_url  # 'http://127.0.0.1:PORT/v1'
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
from aiohttp import web

from tests.doubles.http_double import HOST, HttpDouble

RATE = 24_000


def tone(seconds: float, rate: int = RATE, hz: float = 220.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2").tobytes()


class SpeechDouble(HttpDouble):
    def __init__(self, *, seconds_per_char: float = 0.05, chunk_s: float = 0.1,
                 chunk_delay_s: float = 0.0, first_chunk_delay_s: float = 0.0,
                 fail_status: int | None = None, cut_after_chunks: int | None = None,
                 host: str = HOST):
        super().__init__(host)
        self.seconds_per_char = seconds_per_char
        self.chunk_s = chunk_s
        self.chunk_delay_s = chunk_delay_s
        self.first_chunk_delay_s = first_chunk_delay_s
        self.fail_status = fail_status
        self.cut_after_chunks = cut_after_chunks
        self.sent_bytes = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/audio/speech", self._speech)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        self.requests.append(body)
        if self.fail_status is not None:
            return _error(self.fail_status, "the speech model is not loaded")
        if body.get("response_format", "mp3") != "pcm":
            return _error(400, f"response_format {body.get('response_format')!r}: this "
                          "double only streams pcm")
        audio = tone(len(body["input"]) * self.seconds_per_char)
        step = int(self.chunk_s * RATE) * 2
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        try:
            await asyncio.sleep(self.first_chunk_delay_s)
            for index, start in enumerate(range(0, len(audio), step)):
                if index == self.cut_after_chunks and request.transport is not None:
                    request.transport.abort()  # no end of the chunked body: a broken stream
                    return response
                if start:
                    await asyncio.sleep(self.chunk_delay_s)
                await response.write(audio[start:start + step])
                self.sent_bytes += len(audio[start:start + step])
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            self.aborted += 1
            self.abort_event.set()
            raise
        self.completed += 1
        return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "invalid_request_error",
                                        "code": status}}, status=status)
