"""The reply a piece of model work belongs to, carried by the reply's asyncio task.

The shared stages (voxlive/sched) order work by how soon its call would fall silent
(sched/fair.py), which depends on the reply: has it spoken yet, how much audio has it
made? The session opens a `ReplyPacer` at the start of each reply; code running for that
reply (in its task, or in a thread started with its context, as backends/tts_stream.py
does) finds it here. Work outside a reply has none and is due when it is asked for.
"""

from __future__ import annotations

from contextvars import ContextVar

from voxlive.latency import now
from voxlive.sched.fair import ReplyPacer

_CURRENT: ContextVar[ReplyPacer | None] = ContextVar("voxlive_reply", default=None)


def begin_reply() -> ReplyPacer:
    """Call at the start of a reply, in its own task: later work of it shares this pacer."""
    pacer = ReplyPacer(now())
    _CURRENT.set(pacer)
    return pacer


def current_reply() -> ReplyPacer | None:
    return _CURRENT.get()


def current_deadline() -> float:
    """When the work asked now is due: the current reply's deadline (sched/fair.py), or
    now for work outside a reply."""
    pacer = _CURRENT.get()
    return pacer.deadline if pacer is not None else now()
