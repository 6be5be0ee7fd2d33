"""Helpers for the Realtime API tests: the official openai SDK as the client.

`Events` keeps every server event the SDK receives (as dicts) and waits for the ones
a test needs; audio is made with espeak-ng and sent as 24 kHz pcm16 base64 chunks.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import numpy as np

from voxlive.audio.resample import resample_once
from voxlive.harness.speech import espeak, silence

RATE = 24_000
CHUNK_S = 0.1


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def question(text: str, lead_s: float = 0.1, tail_s: float = 1.2) -> np.ndarray:
    """`text` spoken by espeak-ng at 24 kHz, with silence after it (the end of the turn).
    (whisper tiny.en mishears espeak-ng after a long leading silence: keep it short)"""
    return np.concatenate([silence(lead_s, RATE), espeak(text, RATE), silence(tail_s, RATE)])


async def send_audio(conn: Any, samples: np.ndarray, realtime: bool = False) -> None:
    """Append `samples` in 100 ms chunks; `realtime`: paced like a microphone."""
    step = int(CHUNK_S * RATE)
    for start in range(0, len(samples), step):
        chunk = base64.b64encode(pcm16(samples[start : start + step])).decode()
        await conn.input_audio_buffer.append(audio=chunk)
        if realtime:
            await asyncio.sleep(CHUNK_S)


class Events:
    """Reads the connection in the background; tests wait for events by predicate."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.items: list[dict[str, Any]] = []
        self._new = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for event in self.conn:
            async with self._new:
                self.items.append(event.to_dict())
                self._new.notify_all()

    async def wait(self, predicate: Callable[[dict[str, Any]], bool] | str,
                   timeout: float = 90, start: int = 0) -> dict[str, Any]:
        if isinstance(predicate, str):
            kind = predicate
            predicate = lambda e: e["type"] == kind  # noqa: E731
        seen = start
        async with asyncio.timeout(timeout), self._new:
            while True:
                for event in self.items[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.items)
                await self._new.wait()

    def of(self, kind: str, start: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.items[start:] if e["type"] == kind]

    def audio(self, response_id: str) -> np.ndarray:
        """The response's audio as 16 kHz float32 (for transcribing it back)."""
        data = b"".join(base64.b64decode(e["delta"])
                        for e in self.of("response.output_audio.delta")
                        if e["response_id"] == response_id)
        pcm = np.frombuffer(data, "<i2").astype(np.float32) / 32768
        return resample_once(pcm, RATE, 16_000)

    def stop(self) -> None:
        self._task.cancel()
