"""The system prompt, tuned per model family and chosen from the model that is loaded.

Why per family: a 135M model follows a few plain imperatives and copies long
descriptions (SmolLM2 turned "You are voxlive, a friendly voice assistant" into "Alice
is a friendly voice assistant, she is..."), while Qwen2.5 and Llama-3 follow a fuller
brief, and Qwen introduces itself as Qwen unless told its name. Every prompt says the
same things: the reply is heard, so it is short plain speech in the user's language.
None says "the user", which small models repeat.

The chat template is the model's own: llama-cpp-python formats messages with the
template stored in the GGUF (`tokenizer.chat_template`; see `chat_template_in_use`),
and vLLM with the model's tokenizer config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FAMILIES = ("qwen2", "smollm2", "llama3", "generic")

PROMPTS: dict[str, str] = {
    "qwen2": (
        "You are voxlive, a voice assistant. Everything you write is read aloud, so "
        "answer in one or two short sentences of plain spoken words: no lists, no "
        "markdown, no emojis, no code. Answer the question directly, then stop. Reply "
        "in the language of the question. Spell out symbols as words. If you are not "
        "sure, say so in a few words."
    ),
    "smollm2": (
        "You are a helpful voice assistant. Answer in one short sentence. "
        "Use plain words."
    ),
    "llama3": (
        "You are voxlive, a voice assistant. Your replies are spoken aloud: answer in "
        "one or two short sentences of plain text, with no lists, markdown or emojis. "
        "Answer directly and stop. Reply in the language of the question."
    ),
    "generic": (
        "You are voxlive, a voice assistant. Your words are spoken aloud, so answer in "
        "one or two short sentences of plain text, without lists or markup."
    ),
}

_PATTERNS = (
    ("qwen2", re.compile(r"qwen", re.I)),
    ("smollm2", re.compile(r"smol\s*lm", re.I)),
    ("llama3", re.compile(r"llama[-_ ]?3|meta-llama-3", re.I)),
)


def family_of(names: Iterable[str]) -> str:
    """The family of a model known by these names (GGUF name, file, hub id ...)."""
    text = " ".join(n for n in names if n)
    for family, pattern in _PATTERNS:
        if pattern.search(text):
            return family
    return "generic"


def model_names(llm: Any) -> list[str]:
    """What identifies a loaded LLM backend: the GGUF's own name and file name for
    llama.cpp, the served model's id for OpenAI-compatible servers."""
    names = [str(getattr(llm, "description", ""))]
    config = getattr(llm, "config", None)
    if config is not None:
        names.append(str(getattr(config, "model", "")))
    metadata = getattr(getattr(llm, "llama", None), "metadata", None) or {}
    names += [str(metadata.get(k, "")) for k in ("general.name", "general.basename")]
    return names


def system_prompt_for(settings: Any, llm: Any) -> str:
    """`assistant.system_prompt` if set, else the prompt of `assistant.prompt_family`
    (`auto`: the loaded model's family)."""
    if getattr(settings, "system_prompt", None):
        return str(settings.system_prompt)
    family = getattr(settings, "prompt_family", "auto")
    if family == "auto":
        family = family_of(model_names(llm))
    return PROMPTS[family]


def chat_template_in_use(llama: Any) -> str:
    """Which chat format a llama_cpp.Llama applies, for the log and the tests:
    "gguf" (the GGUF's own Jinja template), or the name of llama-cpp-python's built-in
    format it picked, which it does only when the GGUF's template is that format's."""
    fmt = getattr(llama, "chat_format", None)
    if getattr(llama, "chat_handler", None) is not None:
        return "custom handler"
    if fmt and fmt.startswith("chat_template."):
        return "gguf"
    return str(fmt)
