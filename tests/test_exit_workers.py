"""A process that exits while a model works on a thread waits for that thread to leave the
model: a daemon thread left in native code while the interpreter tears down crashed
`voxlive bench quality` (a segfault in llama_decode after its last call hung up).

Each test runs a small program in a child process whose model double marks, in a file,
that its work in progress got to its end; the interpreter would otherwise drop the
thread in the middle of it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

THREADED = """
import asyncio, sys, threading, time
from voxlive.backends.threaded import iterate_in_thread

MARK = sys.argv[1]

def source(stop: threading.Event):
    for i in range(100):
        time.sleep(0.3)  # a sentence being synthesised: it cannot stop halfway
        with open(MARK, "a") as f:
            f.write(f"item {i} done\\n")
        yield i

async def main():
    async for _ in iterate_in_thread(source, stage="tts", failure="failed"):
        break  # the caller hung up after the first chunk
    time.sleep(0.1)  # the worker is inside its second item when the program ends

asyncio.run(main())
"""

FAIR_LLM = """
import asyncio, sys, threading, time
from types import SimpleNamespace
from voxlive.sched.llm import FairLlamaCpp

MARK = sys.argv[1]

class LlamaDouble:
    def create_chat_completion(self, **kwargs):
        try:
            for i in range(100):
                time.sleep(0.3)  # one llama_decode call
                with open(MARK, "a") as f:
                    f.write(f"token {i} done\\n")
                yield {"choices": [{"delta": {"content": f"word{i} "}}]}
        finally:
            with open(MARK, "a") as f:
                f.write("closed\\n")

inner = SimpleNamespace(llama=LlamaDouble(), _lock=threading.Lock(),
                        config=SimpleNamespace(max_tokens=100, temperature=0.0))
llm = FairLlamaCpp(inner)

async def main():
    stream = llm.stream([{"role": "user", "content": "hi"}])
    await stream.__anext__()
    # the program ends with the reply still being generated (nobody closed it)

asyncio.run(main())
"""


def _run(program: str, mark: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(program), str(mark)],
                          capture_output=True, text=True, timeout=60)


def test_a_backend_thread_finishes_its_item_before_the_process_exits(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    done = _run(THREADED, mark)
    assert done.returncode == 0, done.stderr
    lines = mark.read_text().splitlines()
    # the item under way when the program ended got to its end (item 1; item 2 only on
    # a machine so slow that the program's end came after item 1), and no more began
    assert lines[:2] == ["item 0 done", "item 1 done"] and len(lines) <= 3


def test_the_shared_llm_worker_leaves_llama_before_the_process_exits(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    done = _run(FAIR_LLM, mark)
    assert done.returncode == 0, done.stderr
    lines = mark.read_text().splitlines()
    assert lines[-1] == "closed"  # the generation was ended, not abandoned mid-decode
    assert 1 <= len(lines) - 1 <= 3  # a token or so after the program ended, not 100
