"""One benchmark turn through the Realtime API's WebSocket (`voxlive bench latency
--transport realtime-ws`), measured the way the WebRTC turn is.

The client is a plain aiohttp WebSocket (no SDK: the bench ships with voxlive): it sends
the question as 24 kHz pcm16 in 20 ms appends paced like a microphone, then silence,
until `response.done`. Client-side voice-to-voice runs from the moment the question's
last sample was sent to the first `response.output_audio.delta` received; the WebRTC
turn measures from the last sample sent to the first loud frame received, so both
include their transport both ways.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import numpy as np

from voxlive.audio.resample import resample_once

RATE = 24_000
STEP = RATE // 50  # 20 ms


def _chunk(samples: np.ndarray) -> str:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    return json.dumps({"type": "input_audio_buffer.append",
                       "audio": base64.b64encode(pcm).decode("ascii")})


async def ws_turn(url: str, question_48k: np.ndarray, timeout_s: float = 60
                  ) -> dict[str, Any]:
    """Ask one question in a new session; client-side timings and the texts."""
    audio = resample_once(question_48k, 48_000, RATE)
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://")
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"{ws_url}/v1/realtime?model=bench",
            headers={"Authorization": "Bearer bench-loopback"}) as ws:
        await ws.send_str(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"transcription": {"model": "stt"}}}}}))
        sent_end = asyncio.get_running_loop().create_future()
        sender = asyncio.get_running_loop().create_task(_speak(ws, audio, sent_end))
        first_audio = None
        try:
            async with asyncio.timeout(timeout_s):
                async for message in ws:
                    event = json.loads(message.data)
                    kind = event["type"]
                    if kind == "response.output_audio.delta" and first_audio is None:
                        first_audio = time.monotonic()
                    elif kind == "conversation.item.input_audio_transcription.completed":
                        result["heard"] = event["transcript"]
                    elif kind == "error":
                        raise RuntimeError(f"error event: {event['error']['message']}")
                    elif kind == "response.done":
                        response = event["response"]
                        output = response["output"][0]["content"][0] if response["output"] \
                            else {}
                        result["reply"] = output.get("transcript", "")
                        result["status"] = response["status"]
                        break
        finally:
            sender.cancel()
    end = sent_end.result() if sent_end.done() else None
    result["client_voice_to_voice_ms"] = (round((first_audio - end) * 1000, 1)
                                          if first_audio and end else float("nan"))
    return result


async def _speak(ws: aiohttp.ClientWebSocketResponse, audio: np.ndarray,
                 sent_end: asyncio.Future[float]) -> None:
    """The question in real time, then silence like an open microphone."""
    start = time.monotonic()
    sent = 0
    silence = np.zeros(STEP, np.float32)
    while True:
        chunk = audio[sent : sent + STEP] if sent < len(audio) else silence
        await ws.send_str(_chunk(chunk))
        sent += STEP
        if sent >= len(audio) and not sent_end.done():
            sent_end.set_result(time.monotonic())
        delay = start + sent / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
