"""The fixed spoken question set of `voxlive bench quality`, and how each is voiced.

Each dialogue is one call: its turns are said in order and only the last turn's reply is
scored (the earlier ones set up memory). A reply is correct when it holds one of the
answer's keyword alternatives (after normalisation: "8" and "eight" match alike).
`barge_in`: the first turn asks for something long, the second talks over its reply a
second after it starts, and the answer to the second turn is scored.

Voices are espeak-ng's, cycling through accents, variants, speeds and pitches, so that
the set is not one robot's voice; a voice is fixed per dialogue (the set must not drift
between runs).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialogue:
    name: str
    kind: str  # fact | number | memory | barge_in | language
    turns: tuple[str, ...]
    answers: tuple[str, ...]  # keyword alternatives for the last reply
    language: str = "en"


def _d(name: str, kind: str, turns: str | tuple[str, ...], *answers: str,
       language: str = "en") -> Dialogue:
    return Dialogue(name, kind, (turns,) if isinstance(turns, str) else turns, answers,
                    language)


DIALOGUES: tuple[Dialogue, ...] = (
    _d("capital_france", "fact", "What is the capital of France?", "paris"),
    _d("spider_legs", "number", "How many legs does a spider have?", "eight"),
    _d("week_days", "number", "How many days are there in a week?", "seven"),
    _d("sky_colour", "fact", "What colour is the sky on a clear day?", "blue"),
    _d("bees", "fact", "What do bees make?", "honey"),
    _d("planet", "fact", "Which planet do we live on?", "earth"),
    _d("capital_japan", "fact", "What is the capital of Japan?", "tokyo"),
    _d("largest_ocean", "fact", "What is the largest ocean on Earth?", "pacific"),
    _d("water_freezes", "number", "At how many degrees Celsius does water freeze?",
       "zero", "0"),
    _d("minutes_hour", "number", "How many minutes are there in an hour?", "sixty"),
    _d("seven_times_eight", "number", "What is seven times eight?", "fifty six"),
    _d("ten_minus_four", "number", "What is ten minus four?", "six"),
    _d("two_plus_three", "number", "What is two plus three?", "five"),
    _d("months_year", "number", "How many months are there in a year?", "twelve"),
    _d("ww2_end", "number", "In which year did the Second World War end?",
       "nineteen forty five", "one thousand nine hundred and forty five",
       "one thousand nine hundred forty five"),
    _d("red_planet", "fact", "Which planet is called the red planet?", "mars"),
    _d("romeo_author", "fact", "Who wrote Romeo and Juliet?", "shakespeare"),
    _d("cow_says", "fact", "What animal says moo?", "cow"),
    _d("opposite_hot", "fact", "What is the opposite of hot?", "cold"),
    _d("sun_rises", "fact", "In which direction does the sun rise?", "east"),
    _d("memory_name", "memory",
       ("My name is Alice and I live in Paris.", "What is my name?"), "alice"),
    _d("memory_city", "memory",
       ("My name is Alice and I live in Paris.", "Which city do I live in?"), "paris"),
    _d("memory_number", "memory",
       ("Please remember the number twelve.", "What number did I ask you to remember?"),
       "twelve"),
    _d("memory_pet", "memory",
       ("I have a dog called Max.", "What is the name of my dog?"), "max"),
    _d("barge_capital", "barge_in",
       ("Tell me a long story about a dragon who lives in a castle.",
        "Stop. What is the capital of Italy?"), "rome"),
    _d("barge_math", "barge_in",
       ("Tell me everything you know about the history of Rome.",
        "Wait. What is three plus four?"), "seven"),
    _d("de_capital", "language", "Was ist die Hauptstadt von Deutschland?", "berlin",
       language="de"),
    _d("de_week", "language", "Wie viele Tage hat eine Woche?", "sieben", "7",
       "seven", language="de"),
    _d("es_capital", "language", "¿Cuál es la capital de España?", "madrid",
       language="es"),
    _d("es_dog_legs", "language", "¿Cuántas patas tiene un perro?", "cuatro", "4", "four",
       language="es"),
    _d("fr_capital", "language", "Quelle est la capitale de l'Italie ?", "rome",
       language="fr"),
    _d("fr_week", "language", "Combien de jours y a-t-il dans une semaine ?", "sept", "7",
       "seven", language="fr"),
)

_ENGLISH_VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3", "en-gb+f2")
_SPEEDS = (150, 175, 135, 195, 160)  # words per minute
_PITCHES = (50, 35, 70, 45, 60)


@dataclass(frozen=True)
class Voice:
    voice: str
    words_per_minute: int
    pitch: int


def voice_for(index: int, language: str) -> Voice:
    """The espeak-ng voice of dialogue `index`: accents and variants in turn, with speeds
    and pitches that cycle out of step with them (5 voices x 5 speeds x 5 pitches)."""
    voice = _ENGLISH_VOICES[index % len(_ENGLISH_VOICES)] if language == "en" else language
    return Voice(voice, _SPEEDS[(index // 2) % len(_SPEEDS)],
                 _PITCHES[(index // 3) % len(_PITCHES)])
