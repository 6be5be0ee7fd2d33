"""The language a caller speaks, kept per call, so that every turn is heard in it first.

Why: tiny.en writes a French "Oui." as "We..." and a Spanish "Gracias." as "Yes.", and
base is not always surer of a short answer by the margin that lets a turn leave English
(stt_languages.py); nor of a longer one that tiny.en half makes out ("Port referring
graces to contrast..." for "Por favor ingrese su contraseña..."). A caller who asked in
Spanish a moment ago is answered in English. So the multilingual fallback is told the
language the call was last heard in, and then lets English take a turn only when it is
surer by the margin (the mirror of the rule for leaving English).

A turn changes the call's language only with at least `SWITCH_WORDS` words: English
mishearings of a few words ("Ducey Sank!" for "Dossier 5") would otherwise throw a
French call back to English. Measured on the asterisk prompts through Opus, each
language's 80-120 prompts as one call (README: "Callers of other languages"): heard in
the caller's language, Spanish 38 -> 61 of 80 (45 with 2 words), French 52 -> 65 of 80,
English 115 of 120 either way.

Only an STT whose transcripts carry a language (`Transcript.language`: the multilingual
fallback, alone or behind the first pass) is ever told one: the call's language comes
from its transcripts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxlive.backends.base import Transcript

SWITCH_WORDS = 3
"""Words a transcript needs to change the language of the call."""


def plain_words(text: str) -> list[str]:
    """The words of `text`, lower case, accents and punctuation dropped."""
    plain = unicodedata.normalize("NFKD", text.lower())
    return re.findall(r"\w+", "".join(ch for ch in plain if not unicodedata.combining(ch)))


@dataclass
class CallLanguage:
    """The language a call's caller was last heard in, for the STT's next turn."""

    language: str | None = None
    """None: the STT's own language (English)."""

    def prefer(self, language: str, stt: Any) -> None:
        """A client's word for it (the Realtime API's `transcription.language`): the call
        speaks `language` from now on, if `stt` hears it besides English (`languages`);
        anything else (English too) leaves the STT to its own language."""
        self.language = language if language in getattr(stt, "languages", ()) else None

    def recognise(self, stt: Any, audio: np.ndarray) -> Transcript:
        """`stt.recognise`, told the call's language when it is another; blocking."""
        heard = (stt.recognise(audio) if self.language is None
                 else stt.recognise(audio, language=self.language))
        if len(plain_words(heard.text)) >= SWITCH_WORDS:
            self.language = heard.language
        return heard
