"""The Realtime API's pieces without a daemon: G.711, session settings, items, the turn
core's client-driven turns, and the checks on client events."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_turn_core import Timeline
from voxlive.config import TurnSettings
from voxlive.realtime.config import SessionConfig, TurnDetection
from voxlive.realtime.events import ProtocolError, parse_client_event, stamp
from voxlive.realtime.formats import (
    AudioFormat,
    AudioFormatError,
    InputDecoder,
    OutputEncoder,
    alaw_decode,
    alaw_encode,
    mulaw_decode,
    mulaw_encode,
    parse_format,
)
from voxlive.realtime.items import Items, check_item
from voxlive.turn.core import (
    Cancel,
    ClientCancel,
    ClientTurn,
    Respond,
    State,
    TurnCommitted,
)

ALL_PCM = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def test_g711_matches_the_standard_tables() -> None:
    audioop = pytest.importorskip("audioop", reason="audioop (the reference) left Python 3.13")
    raw = ALL_PCM.tobytes()
    assert mulaw_encode(ALL_PCM) == audioop.lin2ulaw(raw, 2)
    assert alaw_encode(ALL_PCM) == audioop.lin2alaw(raw, 2)
    codes = bytes(range(256))
    assert mulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


@pytest.mark.parametrize("kind", ["audio/pcmu", "audio/pcma"])
def test_g711_round_trip_keeps_speech_band_audio(kind: str) -> None:
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    encoder = OutputEncoder(AudioFormat(kind))
    data = encoder.encode_pcm((tone * 32767).astype(np.int16))
    assert len(data) == 8000  # one byte a sample at 8 kHz
    back = InputDecoder(AudioFormat(kind)).decode(data)  # -> 16 kHz float32
    assert abs(len(back) - 16000) < 200
    spectrum = np.abs(np.fft.rfft(back[200:-200]))
    peak_hz = np.argmax(spectrum) * 16000 / len(back[200:-200])
    assert abs(peak_hz - 440) < 5


def test_pcm16_keeps_an_odd_byte_for_the_next_chunk() -> None:
    decoder = InputDecoder(AudioFormat("audio/pcm"))
    pcm = (np.ones(2400) * 1000).astype("<i2").tobytes()  # 100 ms at 24 kHz
    out = [decoder.decode(pcm[:1001]), decoder.decode(pcm[1001:])]
    assert abs(sum(len(o) for o in out) - 1600) < 100  # 100 ms at 16 kHz, nothing lost


def test_formats_are_checked() -> None:
    assert parse_format({"type": "audio/pcm", "rate": 24000}).rate == 24000
    assert parse_format("g711_ulaw").type == "audio/pcmu"  # the beta dialect's name
    for bad in ({"type": "audio/pcm", "rate": 16000}, {"type": "audio/wav"}, 7):
        with pytest.raises(AudioFormatError):
            parse_format(bad)


def test_session_update_maps_onto_voxlive_and_is_all_or_nothing() -> None:
    settings = SessionConfig(turn_detection=TurnDetection.from_voxlive(TurnSettings(), 0.5))
    settings.update({"type": "realtime", "instructions": "Be brief.",
                     "output_modalities": ["text"],
                     "audio": {"input": {"turn_detection": {"type": "server_vad",
                                                            "silence_duration_ms": 700,
                                                            "interrupt_response": False}},
                               "output": {"voice": "marin"}}})
    assert settings.instructions == "Be brief." and not settings.speaks
    turn = settings.turn_detection.turn_settings(TurnSettings())
    assert turn.end_of_turn_silence_ms == 700 and turn.barge_in is False
    assert turn.pre_roll_ms == TurnSettings().pre_roll_ms  # not given: voxlive's own
    with pytest.raises(ProtocolError) as error:
        settings.update({"instructions": "changed", "output_modalities": ["video"]})
    assert error.value.param == "session.output_modalities"
    assert settings.instructions == "Be brief."  # nothing of the bad update was kept
    settings.update({"audio": {"input": {"turn_detection": None}}})
    assert settings.turn_detection is None
    assert settings.as_json()["audio"]["input"]["turn_detection"] is None


def test_semantic_vad_hands_the_pause_to_the_end_of_turn_detector() -> None:
    base = TurnSettings()
    assert TurnDetection.from_voxlive(base, 0.5, semantic=True).type == "semantic_vad"
    assert TurnDetection.from_voxlive(base, 0.5).type == "server_vad"  # no detector
    settings = SessionConfig(turn_detection=TurnDetection.from_voxlive(base, 0.5, True))
    settings.update({"audio": {"input": {"turn_detection": {"type": "semantic_vad",
                                                            "eagerness": "high"}}}})
    quick = settings.turn_detection.turn_settings(base)
    settings.update({"audio": {"input": {"turn_detection": {"type": "semantic_vad",
                                                            "eagerness": "low"}}}})
    patient = settings.turn_detection.turn_settings(base)
    assert quick.max_incomplete_silence_ms < base.max_incomplete_silence_ms
    assert patient.max_incomplete_silence_ms > base.max_incomplete_silence_ms
    # the detector decides: the silence rules stay voxlive's own, as its fallback
    assert quick.end_of_turn_silence_ms == base.end_of_turn_silence_ms
    assert settings.as_json()["audio"]["input"]["turn_detection"]["eagerness"] == "low"


def test_items_make_the_chat_prompt_with_tool_calls() -> None:
    items = Items()
    items.add(check_item({"type": "message", "role": "user",
                          "content": [{"type": "input_text", "text": "Weather in Oslo?"}]}))
    items.add(check_item({"type": "function_call", "call_id": "c1", "name": "weather",
                          "arguments": "{\"city\": \"Oslo\"}"}))
    items.add(check_item({"type": "function_call_output", "call_id": "c1",
                          "output": "snow"}))
    first = items.add(check_item({"type": "message", "role": "system", "id": "sys",
                                  "content": [{"type": "input_text", "text": "Be kind."}]}),
                      "root")
    assert first is None
    messages = items.messages("Be brief.")
    assert [m["role"] for m in messages] == ["system", "system", "user", "assistant", "tool"]
    assert messages[3]["tool_calls"][0]["id"] == "c1"
    assert messages[4] == {"role": "tool", "tool_call_id": "c1", "content": "snow"}
    # a capped history never starts with a tool result cut off from its call
    assert items.messages("Be brief.", max_messages=1) == [messages[0]]
    assert [m["role"] for m in items.messages("", max_messages=2)] == ["assistant", "tool"]
    items.delete("sys")
    with pytest.raises(ProtocolError):
        items.delete("sys")
    with pytest.raises(ProtocolError):
        check_item({"type": "message", "role": "robot", "content": []})


def test_client_events_are_checked() -> None:
    with pytest.raises(ProtocolError) as error:
        parse_client_event(json.dumps({"type": "nope", "event_id": "e1"}))
    assert error.value.event_id == "e1" and error.value.code == "invalid_event_type"
    for text in ("not json", "[1]", json.dumps({"kind": "x"})):
        with pytest.raises(ProtocolError):
            parse_client_event(text)
    event = parse_client_event(json.dumps({"type": "response.cancel"}))
    assert event.type == "response.cancel" and event.event_id is None
    beta = json.loads(stamp({"type": "response.output_audio.delta"}, beta=True))
    assert beta["type"] == "response.audio.delta" and beta["event_id"].startswith("event_")


def test_a_client_turn_cuts_the_playing_reply_and_is_answered_at_once() -> None:
    timeline = Timeline()
    playing = timeline.answered()
    actions = timeline.event(ClientTurn("and now in French"))
    assert Cancel(playing, barge_in=True, cut_by_speech=True, keep_heard=True) in actions
    assert TurnCommitted(playing + 1) in actions
    assert Respond(playing + 1, "and now in French") in actions
    assert timeline.core.state == State.THINKING


def test_client_cancel_stops_the_reply_and_only_then() -> None:
    timeline = Timeline()
    assert timeline.event(ClientCancel()) == []  # nothing to cancel
    playing = timeline.answered()
    actions = timeline.event(ClientCancel())
    assert Cancel(playing, barge_in=True, cut_by_speech=True, keep_heard=True) in actions
    assert timeline.core.state == State.LISTENING
    assert timeline.event(ClientCancel()) == []
