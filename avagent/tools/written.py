"""The command phrases as a free-speech recogniser writes them: "Turn left 90 degrees.".

A recogniser that scores the expected commands against the audio (whisper, see
``perception/asr/whisper_scoring.py``) needs them in its own spelling: a capital first letter,
a full stop or a question mark, and numbers as it writes them. Slots with a few values (a
``Literal``, a ``str`` with examples) are written out one phrase per value; a number slot stays
open (``{n}``), since the recogniser ranks the numbers itself.
"""

from __future__ import annotations

import itertools
from typing import Any

from avagent.tools.phrases import CommandPhrases, Phrase, number_words

_QUESTION_WORDS = frozenset(
    {"what", "who", "where", "when", "why", "how", "which", "is", "are", "am", "can", "could"}
    | {"do", "does", "did", "will", "would", "shall", "should"}
)
MAX_WRITTEN = 2000
"""Written phrases at most (after slots with values are written out): each is scored per utterance."""


def written_commands(phrases: CommandPhrases) -> list[dict[str, Any]]:
    """Every phrase (and answer, such as "yes") as ``{"spoken", "before", "after"}`` plus, with a
    number slot, ``"numbers"`` and ``"number_words"`` (the grammar's words for each), and
    ``"urgent": true`` for a fixed phrase of a tool marked urgent ("stop"): the form
    ``whisper_scoring.Written`` reads. With a wake word each also comes with the name before it.
    Raises ``ValueError`` for a phrase with two number slots, or more than ``MAX_WRITTEN`` phrases."""
    out: list[dict[str, Any]] = []
    urgent = frozenset(phrases.urgent)
    for phrase in phrases.phrases:
        out.extend(_written(phrase, urgent))
    out.extend({"spoken": extra, "before": _capital(extra), "after": _end(extra)} for extra in phrases.extra)
    if phrases.name:
        named = [_named(phrases.name, w) for w in out if w["spoken"] not in phrases.extra]
        out.extend(named)
    if len(out) > MAX_WRITTEN:
        raise ValueError(f"{len(out)} written phrases (at most {MAX_WRITTEN}): too many for whisper to score")
    return out


def _written(phrase: Phrase, urgent: frozenset[str]) -> list[dict[str, Any]]:
    numeric = [slot for slot in phrase.slots if slot.numeric]
    if len(numeric) > 1:
        raise ValueError(f"phrase {phrase.template!r} has two numbers: whisper scores one at most")
    listed = [slot for slot in phrase.slots if not slot.numeric]
    out: list[dict[str, Any]] = []
    for words in itertools.product(*(slot.words for slot in listed)):
        text = phrase.template
        for slot, word in zip(listed, words, strict=True):
            text = text.replace("{" + slot.name + "}", word)
        end = _end(text)
        if not numeric:
            fixed: dict[str, Any] = {"spoken": text, "before": _capital(text), "after": end}
            if text in urgent:
                fixed["urgent"] = True
            out.append(fixed)
            continue
        slot = numeric[0]
        before, _, after = text.partition("{" + slot.name + "}")
        values = sorted((int(v), w) for w, v in slot.values.items())
        numbered: dict[str, Any] = {
            "spoken": before + "{n}" + after,
            "before": _capital(before.strip()),
            "after": (" " + after.strip() if after.strip() else "") + end,
            "numbers": [v for v, _ in values],
            "number_words": [number_words(v) if 0 <= v <= 999 else w for v, w in values],
        }
        out.append(numbered)
    return out


def _named(name: str, written: dict[str, Any]) -> dict[str, Any]:
    before = written["before"]
    lowered = before[:1].lower() + before[1:]
    before = f"{_capital(name)}, {lowered}".strip()
    return {**written, "spoken": f"{name} {written['spoken']}", "before": before}


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _end(text: str) -> str:
    words = text.split()
    return "?" if words and words[0] in _QUESTION_WORDS else "."
