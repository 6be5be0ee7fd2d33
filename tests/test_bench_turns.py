"""`voxlive bench turns`' offline signal table (voxlive/bench/turns.py): the policy's own
row, where a sure voice decides alone, counts what the detector would do."""

from __future__ import annotations

import numpy as np

from voxlive.bench.turns import call_report, call_summary, signal_summary
from voxlive.harness.turn_corpus import SpokenTurn


def row(kind: str, audio: float, text: float, source: str = "human") -> dict[str, object]:
    return {"kind": kind, "source": source, "audio": audio, "text": text}


def test_the_policy_row_lets_a_sure_voice_decide_alone() -> None:
    rows = [row("complete", 0.9, 0.1),  # the mix alone says incomplete (0.5)
            row("complete", 0.3, 0.99),  # the voice unsure: the mix decides (0.645)
            row("pause", 0.8, 0.0),  # a sure voice, wrong: a premature commit
            row("pause", 0.1, 0.9, "espeak")]
    summary = signal_summary(rows, 0.6, {"mix": 0.5}, voice_alone=0.75)
    assert summary["mix"]["complete_judged_complete"] == "1/2"
    policy = summary["mix voice>=0.75"]
    assert policy["complete_judged_complete"] == "2/2"
    assert policy["pause_judged_incomplete"] == "1/2"
    assert policy["voice_alone"] == 2
    assert policy["espeak_pause"] == "1/1"


def test_without_a_voice_threshold_there_is_no_policy_row() -> None:
    summary = signal_summary([row("complete", 0.9, 0.9)], 0.5,
                             {"smart-turn": 1.0, "text": 0.0, "mix": 0.5})
    assert set(summary) == {"smart-turn", "text", "mix"}


def call(kind: str, source: str, endpointing_ms: float, premature: int = 0) -> dict:
    return {"kind": kind, "source": source, "endpointing_ms": endpointing_ms,
            "premature_commits": premature, "rule": "semantic", "errors": [],
            "decision_ms": [], "compute_ms": [], "after_transcript_ms": []}


def test_the_call_summary_splits_human_and_synthetic_speech() -> None:
    reports = [call("complete", "human", 200), call("complete", "human", 250),
               call("complete", "espeak", 2000), call("pause", "espeak", 900, premature=1),
               call("pause", "human", 1700)]
    summary = call_summary(reports)
    assert summary["premature_on_pause_set"] == "1/2"
    assert summary["commit_delay_complete_ms"]["p50"] == 250
    human, espeak = summary["by_source"]["human"], summary["by_source"]["espeak"]
    assert human["commit_delay_complete_ms"]["p50"] == 225
    assert human["premature_on_pause_set"] == "0/1"
    assert espeak["premature_on_pause_set"] == "1/1"
    assert espeak["commit_delay_complete_ms"]["p50"] == 2000


def events(*kinds: str) -> list[dict]:
    """A call's events: "commit", "speech", or a state name ("speaking", "thinking")."""
    named = {"commit": {"type": "turn_committed", "rule": "semantic"},
             "speech": {"type": "speech_started"}}
    return [named.get(k, {"type": "state", "state": k}) for k in kinds]


def test_a_premature_commit_counts_as_heard_only_if_its_reply_started_playing() -> None:
    turn = SpokenTurn("t", "pause", "espeak", "I would like to order a pizza.",
                      np.zeros(160, np.float32), 0.01)
    unheard = call_report(turn, events("speech", "thinking", "commit", "speech", "thinking",
                                       "commit", "speaking"))
    heard = call_report(turn, events("speech", "thinking", "commit", "speaking", "speech",
                                     "thinking", "commit", "speaking"))
    assert unheard["premature_commits"] == heard["premature_commits"] == 1
    assert (unheard["premature_replies_heard"], heard["premature_replies_heard"]) == (0, 1)
    summary = call_summary([{**unheard, "endpointing_ms": 900},
                            {**heard, "endpointing_ms": 800}])
    assert summary["premature_on_pause_set"] == "2/2"
    assert summary["premature_heard_on_pause_set"] == "1/2"
