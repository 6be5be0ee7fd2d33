"""Moonshine's tokenizer.bin (voxlive/backends/stt_moonshine.py): pieces in id order, each
a length byte (two for long pieces) and its bytes; ids 3..258 are single bytes, so a
character outside the vocabulary comes as several byte tokens."""

from __future__ import annotations

from pathlib import Path

from voxlive.backends.stt_moonshine import Tokenizer


def tokenizer_bin(pieces: list[bytes]) -> bytes:
    out = bytearray()
    for piece in pieces:
        if len(piece) >= 0x80:
            out += bytes([0x80 | (len(piece) & 0x7F), len(piece) >> 7])
        else:
            out.append(len(piece))
        out += piece
    return bytes(out)


SPECIAL = [b"<unk>", b"<s>", b"</s>"]
BYTES = [bytes([b]) for b in range(256)]
WORDS = ["\u2581What".encode(), "\u2581is".encode(), b"?", b"x" * 200, "\u2581caf".encode()]
WHAT, IS, QUESTION, LONG, CAF = range(259, 264)


def make(tmp_path: Path) -> Tokenizer:
    (tmp_path / "tokenizer.bin").write_bytes(tokenizer_bin(SPECIAL + BYTES + WORDS))
    return Tokenizer(tmp_path)


def test_pieces_become_words_with_spaces_at_the_word_marks(tmp_path: Path) -> None:
    assert make(tmp_path).decode([WHAT, IS, QUESTION]) == "What is?"


def test_a_long_piece_is_read_whole_and_the_pieces_after_it_keep_their_ids(
        tmp_path: Path) -> None:
    tokenizer = make(tmp_path)
    assert len(tokenizer.pieces) == 3 + 256 + len(WORDS)
    assert tokenizer.decode([LONG]) == "x" * 200
    assert tokenizer.decode([CAF]) == "caf"


def test_byte_tokens_join_into_one_character(tmp_path: Path) -> None:
    e_acute = [3 + b for b in "é".encode()]  # two byte tokens
    assert make(tmp_path).decode([CAF, *e_acute, QUESTION]) == "café?"


def test_the_start_and_end_tokens_are_not_written(tmp_path: Path) -> None:
    assert make(tmp_path).decode([1, WHAT, 2]) == "What"
