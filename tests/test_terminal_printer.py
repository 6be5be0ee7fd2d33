"""The terminal's transcript (voxlive local): what the user said, once their turn is over."""

from __future__ import annotations

import io

from voxlive.transports.terminal import TranscriptPrinter


def printed(*events: dict) -> str:
    out = io.StringIO()
    printer = TranscriptPrinter(out, color=False)
    for event in events:
        printer(event)
    return out.getvalue()


def test_the_users_words_print_when_the_turn_is_committed() -> None:
    assert printed({"type": "user_transcript", "turn": 1, "text": "Hello there."}) == ""
    assert printed({"type": "user_transcript", "turn": 1, "text": "Hello there."},
                   {"type": "turn_committed", "turn": 1, "rule": "semantic"}) == (
        "you: Hello there.\n")


def test_words_heard_in_another_language_say_which() -> None:
    text = printed({"type": "user_transcript", "turn": 2, "text": "Bonjour.", "language": "fr"},
                   {"type": "turn_committed", "turn": 2, "rule": "timeout"},
                   {"type": "user_transcript", "turn": 3, "text": "Thanks."},
                   {"type": "turn_committed", "turn": 3, "rule": "timeout"})
    assert text.splitlines() == ["you: [fr] Bonjour.", "you: Thanks."]
