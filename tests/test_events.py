"""The events module is the one list of data-channel events: the code, the README's table
and the page must all agree with it, and an event it does not know is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from voxlive.events import (
    RECEIVED,
    SENT,
    ErrorEvent,
    UnknownEvent,
    Vision,
    answer_client,
    make_event,
)
from voxlive.session import CallSession

ROOT = Path(__file__).resolve().parent.parent


def readme_event_types() -> set[str]:
    """The types in the first column of the README's events table (`a` / `b` rows too)."""
    text = (ROOT / "README.md").read_text()
    start = text.index("The client opens a data channel labelled `events`")
    table = text[start:text.index("The client may send", start)]
    rows = re.findall(r"^\| ((?:`[a-z_]+`(?: / )?)+) \|", table, re.MULTILINE)
    assert rows, "the README's events table was not found"
    return {name for row in rows for name in re.findall(r"`([a-z_]+)`", row)}


def page_event_types() -> set[str]:
    """The keys of EVENT_HANDLERS in the page."""
    js = (ROOT / "voxlive" / "web" / "app.js").read_text()
    block = re.search(r"const EVENT_HANDLERS = new Map\(\[(.*?)\n\]\);", js, re.DOTALL)
    assert block is not None, "EVENT_HANDLERS not found in app.js"
    return set(re.findall(r"^\s*\['([a-z_]+)',", block.group(1), re.MULTILINE))


def emitted_event_types() -> set[str]:
    """Every literal event type the code hands to an `emit(kind, ...)` (or `_emit`)."""
    found: set[str] = set()
    for path in (ROOT / "voxlive").rglob("*.py"):
        found |= set(re.findall(r"(?:\bself\.|\bs\.|\b_)emit\(\s*\"([a-z_]+)\"", path.read_text()))
    return found


def test_the_readme_table_lists_every_event_and_no_other() -> None:
    assert readme_event_types() == set(SENT)


def test_the_page_handles_every_event_and_no_other() -> None:
    assert page_event_types() == set(SENT)


def test_every_event_the_code_emits_is_declared() -> None:
    emitted = emitted_event_types()
    assert {"state", "barge_in", "tool_call", "turn_judged", "vision"} <= emitted  # the scan works
    assert emitted - set(SENT) == set()


def test_the_sessions_emit_refuses_an_unknown_type_or_field() -> None:
    sent: list[dict[str, Any]] = []
    fake = SimpleNamespace(send_event=sent.append)
    CallSession.emit(fake, "resumed", turn=3)  # type: ignore[arg-type]
    assert sent == [{"type": "resumed", "turn": 3}]
    with pytest.raises(UnknownEvent, match="'resume'"):
        CallSession.emit(fake, "resume", turn=3)  # type: ignore[arg-type]
    with pytest.raises(UnknownEvent, match="resumed"):
        CallSession.emit(fake, "resumed", generation=3)  # type: ignore[arg-type]
    assert len(sent) == 1


def test_to_dict_is_the_wire_form() -> None:
    assert make_event("turn_committed", turn=2, rule="semantic").to_dict() == {
        "type": "turn_committed", "turn": 2, "rule": "semantic"}
    # A null field goes out as null, unless the event leaves it out when None.
    vision = Vision(1, "intent", False, "a desk", [["desk", 0.9]], "stub", None).to_dict()
    assert vision["thumbnail"] is None
    running = make_event("tool_call", turn=1, id="c1", name="look", arguments="",
                         status="running").to_dict()
    assert running == {"type": "tool_call", "turn": 1, "id": "c1", "name": "look",
                       "arguments": "", "status": "running"}
    failed = make_event("tool_call", turn=1, id="c1", name="look", arguments="",
                        status="error", duration_ms=5, error="boom", error_kind="timeout")
    assert failed.to_dict()["error_kind"] == "timeout"
    assert "images" not in failed.to_dict()
    assert json.loads(json.dumps(failed.to_dict())) == failed.to_dict()


def test_the_client_may_send_ping_and_nothing_else() -> None:
    assert set(RECEIVED) == {"ping"}
    assert answer_client('{"type": "ping"}').to_dict() == {"type": "pong"}
    for bad in ("not json", "[1]", '{"no": "type"}', '"ping"'):
        answer = answer_client(bad)
        assert isinstance(answer, ErrorEvent) and "JSON objects" in answer.message
    unhashable = answer_client('{"type": [1]}')
    assert isinstance(unhashable, ErrorEvent) and "unknown event type" in unhashable.message
    long = answer_client(json.dumps({"type": "x" * 5000}))
    assert isinstance(long, ErrorEvent) and len(long.message) < 80
