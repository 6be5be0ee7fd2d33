from __future__ import annotations

from voxlive.turn.chunker import SentenceChunker


def feed(chunker: SentenceChunker, text: str, piece: int = 3) -> list[str]:
    out: list[str] = []
    for i in range(0, len(text), piece):
        out += chunker.push(text[i : i + piece])
    return out


def test_sentences_come_out_as_soon_as_they_end() -> None:
    chunker = SentenceChunker()
    assert chunker.push("The capital of France") == []
    assert chunker.push(" is Paris. It") == ["The capital of France is Paris."]
    assert chunker.push(" is lovely!") == []  # the end needs the next whitespace or flush
    assert chunker.flush() == ["It is lovely!"]
    assert chunker.flush() == []


def test_abbreviation_sized_fragments_wait_for_more_text() -> None:
    chunker = SentenceChunker(min_chars=12)
    out = feed(chunker, "Hi. I am voxlive, your assistant. ")
    assert out == ["Hi. I am voxlive, your assistant."]


def test_a_long_sentence_is_cut_at_a_clause() -> None:
    chunker = SentenceChunker(max_chars=60, first_max_chars=60)
    text = ("When you travel to Paris in the spring, you can walk along the river, "
            "visit the museums and eat in small cafes")
    out = feed(chunker, text)
    assert out and all(len(s) <= 80 for s in out)
    assert out[0].endswith(",")
    assert " ".join(out + chunker.flush()) == text


def test_quotes_after_the_full_stop_stay_with_the_sentence() -> None:
    chunker = SentenceChunker()
    assert feed(chunker, 'She said "we are there." Then') == ['She said "we are there."']


def test_the_first_chunk_is_cut_sooner_than_the_rest() -> None:
    chunker = SentenceChunker(max_chars=160, first_max_chars=40)
    text = "Lion: Lion, Africa, Africa, Lion, LION, LION, LION, and more lions, " * 3
    out = feed(chunker, text)
    assert len(out[0]) <= 60
    assert all(len(s) <= 180 for s in out[1:])


def test_bracketed_notes_and_markdown_are_not_spoken() -> None:
    from voxlive.turn.chunker import speakable

    assert speakable("[voice: low] I'm sorry to hear that.") == "I'm sorry to hear that."
    assert speakable("Paris is **lovely** [interrupted by the user]") == "Paris is lovely"
    assert speakable("## Answer: `42`") == "Answer: 42"
