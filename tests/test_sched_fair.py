"""The fair scheduler of the shared models (voxlive/sched/fair.py) on scripted workloads.

A shared model runs one slice of work at a time; each reply is a script of sentences,
each costing some model time and lasting some seconds when spoken. The simulation runs
the scheduler's own policy (FairQueue + ReplyPacer, as sched/llm.py's worker does) and,
for contrast, first come first served, on a virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from voxlive.sched.fair import FairQueue, ReplyPacer, StageStats

SLICE_S = 0.05  # model time between two scheduling decisions (a few tokens)


@dataclass(eq=False)
class Reply:
    name: str
    arrives: float
    sentences: list[float]  # model seconds for each sentence
    speak_s: float = 2.5  # how long each sentence plays
    pacer: ReplyPacer = field(init=False)
    done_work: float = 0.0
    made: list[float] = field(default_factory=list)  # when each sentence was ready

    def __post_init__(self) -> None:
        self.pacer = ReplyPacer(self.arrives)

    @property
    def finished(self) -> bool:
        return len(self.made) == len(self.sentences)

    def work(self, t: float, seconds: float) -> None:
        self.done_work += seconds
        needed = sum(self.sentences[: len(self.made) + 1])
        if self.done_work >= needed - 1e-9:
            self.made.append(t)
            self.pacer.made(t, self.speak_s)


def simulate(replies: list[Reply], fair: bool = True, until: float = 500.0) -> float:
    """Run the shared model until every reply is made; returns the end time."""
    t = 0.0
    queue: FairQueue[Reply] = FairQueue()
    pending = sorted(replies, key=lambda r: r.arrives)
    fifo: list[Reply] = []
    while t < until:
        while pending and pending[0].arrives <= t + 1e-9:
            reply = pending.pop(0)
            queue.push(reply, reply.pacer.deadline, t)
            fifo.append(reply)
        if not len(queue):
            if not pending:
                return t
            t = pending[0].arrives
            continue
        if fair:
            reply = queue.take()[0]  # type: ignore[index]
        else:
            reply = fifo[0]
            queue.discard(reply)
        t += SLICE_S
        reply.work(t, SLICE_S)
        if reply.finished:
            fifo.remove(reply)
        else:
            queue.push(reply, reply.pacer.deadline, t)
    raise AssertionError("the simulation did not finish")


def test_queue_takes_the_earliest_deadline_then_the_first_in() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("late", 5.0)
    queue.push("first", 1.0)
    queue.push("second", 1.0)
    queue.push("gone", 0.5)
    assert queue.discard("gone") and not queue.discard("gone")
    assert queue.peek() == "first" and queue.peek_deadline() == 1.0
    assert [item for item, _ in queue.take_batch(2)] == ["first", "second"]
    queue.push("late", 0.1)  # pushed again: its old place is gone
    assert queue.take() == ("late", 0.0) and queue.take() is None and len(queue) == 0


def test_pacer_deadline_is_arrival_until_audio_then_when_it_runs_out() -> None:
    pacer = ReplyPacer(submitted=10.0, margin_s=1.0)
    assert pacer.deadline == 10.0 and not pacer.started
    pacer.made(12.0, 3.0)
    assert pacer.started and pacer.deadline == pytest.approx(14.0)
    pacer.made(13.0, 2.0)
    assert pacer.deadline == pytest.approx(16.0)  # 12 + 5 s of audio - 1 s margin


def test_first_audio_goes_in_arrival_order_before_any_second_sentence() -> None:
    a, b, c = (Reply(name, arrives, [1.0, 1.0, 1.0])
               for name, arrives in (("a", 0.0), ("b", 0.1), ("c", 0.2)))
    simulate([a, b, c])
    assert a.made[0] < b.made[0] < c.made[0]
    # Nobody's first audio waits behind another reply's rest.
    assert c.made[0] < a.made[1]
    assert c.made[0] == pytest.approx(3.0, abs=0.2)  # three first sentences of work


def test_first_come_first_served_makes_the_second_caller_wait_a_whole_reply() -> None:
    a, b = Reply("a", 0.0, [1.0, 1.0, 1.0]), Reply("b", 0.1, [1.0, 1.0, 1.0])
    simulate([a, b], fair=False)
    assert b.made[0] > a.made[-1]  # what the fair order removes
    fair_a, fair_b = Reply("a", 0.0, [1.0, 1.0, 1.0]), Reply("b", 0.1, [1.0, 1.0, 1.0])
    simulate([fair_a, fair_b])
    assert fair_b.made[0] < b.made[0] - 1.5


def test_a_speaking_reply_keeps_its_audio_flowing_when_the_model_keeps_up() -> None:
    a, b = Reply("a", 0.0, [0.5, 0.5, 0.5]), Reply("b", 0.6, [0.5, 0.5, 0.5])
    simulate([a, b])
    for reply in (a, b):  # each next sentence is ready before the one before has played
        assert all(later <= earlier + reply.speak_s
                   for earlier, later in zip(reply.made, reply.made[1:], strict=False))


def test_no_starvation_under_a_stream_of_new_questions() -> None:
    """The model is overloaded (a new one-sentence question every 0.8 s, each 1 s of
    work): the long reply that came first still finishes."""
    long_reply = Reply("long", 0.0, [1.0] * 4)
    flood = [Reply(f"q{i}", 0.1 + 0.8 * i, [1.0]) for i in range(60)]
    simulate([long_reply, *flood], until=1000)
    assert long_reply.finished
    # Its deadlines are fixed when it queues; new questions are due only at their
    # arrival, so it is passed by at most the questions that came before its deadline.
    assert long_reply.made[-1] < 30.0


def test_stage_stats_mean_batch_and_waits() -> None:
    stats = StageStats()
    stats.batch(1)
    stats.batch(3)
    stats.waited(0.2)
    stats.waited(-0.1)  # clock noise counts as no wait
    assert stats.mean_batch == 2.0
    gauges = stats.gauges("stt")
    assert gauges["sched_stt_items"] == 4 and gauges["sched_stt_first_wait_seconds"] == 0.2
    assert gauges["sched_stt_max_first_wait_seconds"] == 0.2
