"""llama.cpp in process, shared fairly between calls: generation time-sliced per token.

What the llama.cpp backend can do: llama-cpp-python's `Llama` holds one context (one
KV cache, one sequence); its high-level API decodes one sequence at a time, so requests
cannot be batched in process. (llama.cpp's own server does continuous batching over
parallel slots, `--parallel N`; voxlive talks to it, or to vLLM, through the `openai`
backend, which keeps requests concurrent.) What it can do in process is switch: a
sequence's KV cells are saved (`llama_state_seq_get_data`, about 29 KB a token for
Qwen2.5-1.5B) and restored, so several replies advance in turn on one context.

`FairLlamaCpp` runs every request on one worker thread, earliest deadline first
(voxlive/sched/fair.py): a reply that has not said its first sentence is due at once,
in order of arrival; a reply that is speaking is due when its spoken text runs out, at
a speaking rate, minus a margin. The worker checks after every token whether a more
urgent request waits and switches to it. So two questions at once: the first caller
hears its first sentence as before, the second hears its own right after (not after the
first's whole reply), and the first's second sentence is made while its first plays.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from voxlive.backends.base import BackendError, ChatMessage
from voxlive.backends.threaded import EXIT_WAIT_S
from voxlive.latency import now
from voxlive.sched.fair import FairQueue, ReplyPacer, StageStats
from voxlive.turn.spoken import spoken_seconds

_DONE = object()
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*(?=\s|$)")
WORDS_PER_SECOND = 2.6


@dataclass(eq=False)
class _Request:
    messages: list[ChatMessage]
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue[object]
    pacer: ReplyPacer
    stop: threading.Event = field(default_factory=threading.Event)
    generator: Any = None
    saved: tuple[bytes, list[int], Any] | None = None  # KV cells, tokens, sampler
    text: str = ""
    spoken_upto: int = 0  # characters of `text` counted as ready speech
    busy_s: float = 0.0  # time the model spent on this request
    finished: bool = False

    def post(self, item: object) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)


class FairLlamaCpp:
    """Wraps a LlamaCppLLM (same interface); `stats` counts switches and first waits."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.llama = inner.llama
        self.stats = StageStats()
        self.switches = 0
        self._queue: FairQueue[_Request] = FairQueue()
        self._wake = threading.Condition()
        self._holder: _Request | None = None  # whose sequence is in the context now
        self._worker: threading.Thread | None = None
        self._closing: list[_Request] = []
        self._exiting = False

    def __getattr__(self, name: str) -> Any:  # description, warm_up, supports_tools ...
        return getattr(self.inner, name)

    @property
    def config(self) -> Any:
        return self.inner.config

    @config.setter
    def config(self, value: Any) -> None:  # e.g. the benchmarks' greedy decoding
        self.inner.config = value

    async def stream(self, messages: list[ChatMessage],
                     tools: list[dict] | None = None) -> AsyncIterator[str]:
        request = _Request(messages, asyncio.get_running_loop(), asyncio.Queue(),
                           ReplyPacer(now()))
        with self._wake:
            self._queue.push(request, request.pacer.deadline, now())
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="llm-fair",
                                                 daemon=True)
                self._worker.start()
                atexit.register(self._stop_at_exit)
            self._wake.notify()
        try:
            while (item := await request.out.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise BackendError("llm", f"llama.cpp failed: {item}") from item
                yield item  # type: ignore[misc]
        finally:
            request.stop.set()
            with self._wake:
                if self._queue.discard(request):
                    self._closing.append(request)  # its generator is closed by the worker
                self._wake.notify()

    # --- the worker thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing and not self._exiting:
                    self._wake.wait()
                closing, self._closing = self._closing, []
                taken = self._queue.take()
                exiting = self._exiting and not self._queue
            with self.inner._lock:  # warm_up and others use the context too
                for request in closing:
                    self._finish(request)
                if taken is not None:
                    self._slice(taken[0])
            if exiting:
                return

    def _stop_at_exit(self) -> None:
        """The process is exiting: end every reply and wait for the worker to leave
        llama.cpp. Left decoding while the interpreter tears down, it crashed the process
        (a segfault in llama_decode at the end of `voxlive bench quality`, whose last
        call hung up during its reply's prompt)."""
        worker = self._worker
        with self._wake:
            self._exiting = True
            self._wake.notify()
        if worker is not None:
            worker.join(EXIT_WAIT_S)

    def _slice(self, request: _Request) -> None:
        """Run `request` until it ends, is stopped, or a more urgent one waits."""
        started = now()
        try:
            if request.stop.is_set() or self._exiting:
                return self._finish(request)
            self._switch_to(request)
            if request.generator is None:
                config = self.inner.config
                request.generator = iter(self.llama.create_chat_completion(
                    messages=request.messages, stream=True, max_tokens=config.max_tokens,
                    temperature=config.temperature))
            while True:
                try:
                    chunk = next(request.generator)
                except StopIteration:
                    return self._finish(request, started)
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    request.post(piece)
                    self._note_text(request, piece, started)
                if request.stop.is_set() or self._exiting:
                    return self._finish(request, started)
                with self._wake:
                    waiting = self._queue.peek_deadline()
                if waiting is not None and waiting < request.pacer.deadline:
                    break  # someone is more urgent: their turn
        except Exception as exc:  # reported to the caller on its loop
            request.post(exc)
            return self._finish(request, started)
        request.busy_s += now() - started
        with self._wake:
            if not request.stop.is_set():
                self._queue.push(request, request.pacer.deadline, now())
            else:
                self._closing.append(request)

    def _note_text(self, request: _Request, piece: str, started: float) -> None:
        """Count finished sentences as speech made (the pacer's clock)."""
        request.text += piece
        ends = list(_SENTENCE_END.finditer(request.text, request.spoken_upto))
        if not ends:
            return
        end = ends[-1].end()
        first = not request.pacer.started
        t = now()
        request.pacer.made(t, spoken_seconds(request.text[request.spoken_upto:end],
                                             WORDS_PER_SECOND))
        request.spoken_upto = end
        if first and request.pacer.started:
            own = request.busy_s + (t - started)
            self.stats.waited(t - request.pacer.submitted - own)

    def _switch_to(self, request: _Request) -> None:
        holder = self._holder
        if holder is request:
            return
        if holder is not None and not holder.finished:
            holder.saved = self._save()
            self.switches += 1
        if request.saved is not None:
            self._restore(request.saved)
            request.saved = None
        # A new request starts from whatever is in the context: llama-cpp-python reuses
        # the longest common prefix (the system prompt; its own history, if it was last).
        self._holder = request
        self.stats.batch(1)

    def _save(self) -> tuple[bytes, list[int], Any]:
        import llama_cpp

        ctx = self.llama.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        tokens = self.llama.input_ids[: self.llama.n_tokens].tolist()
        return bytes(buffer)[:written], tokens, self.llama._sampler

    def _restore(self, saved: tuple[bytes, list[int], Any]) -> None:
        import llama_cpp

        data, tokens, sampler = saved
        self.llama._ctx.kv_cache_clear()
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(self.llama.ctx, buffer, len(data), 0) == 0:
            raise RuntimeError("llama.cpp could not restore a saved sequence")
        self.llama.input_ids[: len(tokens)] = tokens
        self.llama.n_tokens = len(tokens)
        self.llama._sampler = sampler

    def _finish(self, request: _Request, started: float | None = None) -> None:
        if started is not None:
            request.busy_s += now() - started
        if request.finished:
            return
        request.finished = True
        request.saved = None
        if request.generator is not None:  # (no llama call happens on closing it)
            request.generator.close()
        request.post(_DONE)

    def gauges(self) -> dict[str, float]:
        return {**self.stats.gauges("llm"), "sched_llm_switches": self.switches}

    async def aclose(self) -> None:
        await self.inner.aclose()
