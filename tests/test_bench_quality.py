"""`voxlive bench quality` on a tiny subset, over real WebRTC with the real embedded
models; its scoring on known text; and the chat template llama.cpp applies."""

from __future__ import annotations

import json

import pytest

from tests.conftest import requires_espeak
from voxlive.backends.loader import Models
from voxlive.bench import quality
from voxlive.bench.quality_set import DIALOGUES, voice_for
from voxlive.bench.scoring import (
    answers,
    leaks,
    normalise,
    number_words,
    sentence_count,
    word_error_rate,
)
from voxlive.cli import build_parser
from voxlive.config import VoxliveConfig
from voxlive.harness.real_speech import RATE, SpeechItem
from voxlive.turn.prompts import chat_template_in_use

SUMMARY_FIELDS = {
    "benchmark", "profile", "models", "machine", "assistant", "dialogues", "correct",
    "correct_rate", "by_kind", "reply_sentences", "reply_seconds_est", "empty_replies",
    "leaks", "errors", "stt_wer", "voice_to_voice_ms", "wall_s", "per_dialogue",
    "per_recording", "prompt_family", "chat_template", "heard_right",
    "correct_when_heard_right",
}


@requires_espeak
async def test_a_tiny_subset_runs_over_webrtc_and_reports_every_field(
        config: VoxliveConfig, embedded_models: Models) -> None:
    from voxlive.harness.speech import espeak

    dialogue = next(d for d in DIALOGUES if d.name == "capital_france")
    # The real-speech path on one utterance spoken here (CI has no corpus fetched).
    said = "Please enter your password."
    recording = SpeechItem(espeak(said, RATE), said, "en", "espeak:password")
    result = await quality.measure(config, "embedded", embedded_models, [dialogue],
                                   [recording])
    result = json.loads(json.dumps(result))  # what --json prints
    assert set(result) >= SUMMARY_FIELDS
    assert result["dialogues"] == 1 and result["errors"] == 0
    [one] = result["per_dialogue"]
    assert one["name"] == "capital_france" and one["reply"], "the question was answered"
    assert "france" in one["turns"][0]["heard"].lower()
    assert one["correct"] == answers(one["reply"], dialogue.answers)
    assert result["leaks"] == 0
    assert result["reply_sentences"]["max"] <= config.assistant.max_sentences
    assert set(result["stt_wer"]) == {"synthetic_en", "real_espeak"}
    assert 0 <= result["stt_wer"]["synthetic_en"]["wer"] < 0.5
    assert result["per_recording"][0]["heard"], "the recording was transcribed"
    assert result["voice_to_voice_ms"]["p50"] > 0
    quality.print_table(result)  # the table prints from the same fields


def test_the_cli_takes_the_quality_bench() -> None:
    args = build_parser().parse_args(["bench", "quality", "--limit", "3", "--real", "0",
                                      "--json"])
    assert (args.bench, args.limit, args.real, args.json) == ("quality", 3, 0, True)


def test_the_question_set_covers_what_the_issue_asks() -> None:
    kinds = [d.kind for d in DIALOGUES]
    assert len(DIALOGUES) >= 30
    assert {"memory", "barge_in", "number", "language"} <= set(kinds)
    assert {d.language for d in DIALOGUES} >= {"en", "de", "es", "fr"}
    assert len({d.name for d in DIALOGUES}) == len(DIALOGUES)
    assert all(len(d.turns) == 2 for d in DIALOGUES if d.kind in ("memory", "barge_in"))
    voices = {voice_for(i, d.language) for i, d in enumerate(DIALOGUES)}
    assert len({v.voice for v in voices}) >= 5 and len({v.words_per_minute for v in voices}) >= 4


def test_numbers_and_punctuation_are_normalised_before_scoring() -> None:
    assert normalise("A spider has 8 legs!") == normalise("a spider has eight legs")
    assert normalise("Fifty-six.") == normalise("56") == ["fifty", "six"]
    assert normalise("It ended in 1945.") == ["it", "ended", "in", "nineteen", "forty", "five"]
    assert number_words(2005) == "two thousand five"
    assert number_words(300) == "three hundred"
    assert normalise("Uh, it's um fine") == ["its", "fine"]
    assert normalise("¿Cuántas patas?", "es") == ["cuántas", "patas"]
    assert word_error_rate([("How many legs does a spider have?",
                             "How many lenses does a side have?")]) == pytest.approx(2 / 7)
    assert word_error_rate([("Seven times 8.", "seven times eight")]) == 0


def test_answers_lengths_and_leaks() -> None:
    assert answers("It has 8 legs.", ["eight"]) and not answers("Paris.", ["pari"])
    assert answers("Rome, of course!", ["rome"])
    assert sentence_count("Hi. I am here! Ok") == 3
    assert leaks('The user interrupted, "What in my name?"')
    assert leaks("[voice: low] hello")
    assert not leaks("The capital of France is Paris.")


def test_a_wrong_answer_is_put_down_to_its_cause() -> None:
    france = next(d for d in DIALOGUES if d.name == "capital_france")
    said = france.turns[0]

    def turn(heard: str, reply: str = "Lyon.", error: str | None = None) -> dict:
        return {"said": said, "heard": heard, "reply": reply, "error": error}

    assert quality.miss_cause(france, [turn("What is the capital of friends?")]) == "misheard"
    assert quality.miss_cause(france, [turn("What is the capital of France?")]) == "llm"
    assert quality.miss_cause(france, [turn("", "", "stt: timed out")]) == "error"
    assert quality.miss_cause(france, [turn(said, "")]) == "no reply"
    assert quality.miss_cause(france, [turn("", "")]) == "heard no words"
    german = next(d for d in DIALOGUES if d.language == "de")
    wrong = {"said": german.turns[0], "heard": "Was is the house that for the drug land?",
             "reply": "Sorry?", "error": None}
    assert quality.miss_cause(german, [wrong]) == "wrong language"
    # Memory: the first turn misheard ("Ellis") is the cause, though the question was heard.
    name = next(d for d in DIALOGUES if d.name == "memory_name")
    turns = [{"said": name.turns[0], "heard": "My name is Ellis and I live in Paris.",
              "reply": "Nice to meet you.", "error": None},
             {"said": name.turns[1], "heard": name.turns[1], "reply": "Ellis.", "error": None}]
    assert quality.miss_cause(name, turns) == "misheard"


def test_a_turn_of_no_words_ends_without_a_reply() -> None:
    """The daemon answers nothing to a turn whose transcript is empty (Whisper's video
    outro on a French question, say): back to listening. The benchmark must not wait for a
    reply that will not come (it timed out after 90 s and lost the run)."""
    def event(kind: str, turn: int | None = None, **more: object) -> dict:
        return {"type": kind, **({"turn": turn} if turn is not None else {}), **more}

    dropped = [event("state", state="listening"), event("speech_started"),
               event("turn_committed", 3, rule="semantic"), event("state", state="thinking"),
               event("turn_judged", 3), event("state", state="listening")]
    assert quality._heard_nothing(dropped, 1, set()) == dropped[2]
    assert quality._heard_nothing(dropped, 1, {3}) is None  # a turn already dealt with
    answered = [*dropped[:4], event("assistant_text", 3, text="Sept.", final=True),
                event("state", state="speaking"), event("state", state="listening")]
    assert quality._heard_nothing(answered, 1, set()) is None
    thinking = dropped[:5]
    assert quality._heard_nothing(thinking, 0, set()) is None  # still waiting for words


def test_llama_cpp_formats_with_the_models_own_chat_template(embedded_models: Models) -> None:
    llama = getattr(embedded_models.llm, "llama", None)
    if llama is None:
        pytest.skip("the embedded LLM is not llama.cpp here")
    assert "tokenizer.chat_template" in llama.metadata, "the GGUF carries its template"
    # "gguf": the GGUF's Jinja template; a built-in name only when it is that same template.
    # Never llama-cpp-python's fallback ("llama-2"), which no instruct model here expects.
    assert chat_template_in_use(llama) in ("gguf", "chatml", "llama-3")
