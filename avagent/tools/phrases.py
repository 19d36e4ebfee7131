"""Spoken command phrases: from tool templates to a speech grammar, and from words back to calls.

A template is words and ``{slot}`` placeholders, e.g. ``"turn {direction} {degrees} degrees"``.
Each slot takes its vocabulary from the tool's argument type: a ``Literal`` gives its values, an
``int`` gives number words within the field's bounds, a ``str`` gives the field's ``examples``.
The same templates give the JSGF grammar the offline recogniser decodes with, and the matcher that
turns recognised text into a tool call, so the agent recognises exactly what it can do.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo

from avagent.tools.registry import Tool

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SLOT = re.compile(r"\{(\w+)\}")
_MAX_NUMBER = 999


def number_words(n: int) -> str:
    """English words for 0 <= n <= 999, as the pronunciation dictionary spells them."""
    if not 0 <= n <= _MAX_NUMBER:
        raise ValueError(f"{n} is outside 0..{_MAX_NUMBER}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    hundreds, rest = divmod(n, 100)
    return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_words(rest))


def normalise(text: str) -> str:
    """Lower case, words only, single spaces: how recognised text is compared with phrases."""
    text = text.lower().replace("°", " degrees ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Spoken:
    """How an ``int`` argument is said: every ``step`` within its bounds (``Annotated`` metadata).

    A smaller vocabulary is recognised more reliably: people say "forty five degrees", rarely
    "forty three degrees".
    """

    step: int = 1


@dataclass(frozen=True)
class Slot:
    name: str
    words: tuple[str, ...]
    """Every spoken form the slot accepts."""
    values: dict[str, Any]
    """Spoken form -> argument value."""
    numeric: bool = False


@dataclass(frozen=True)
class Phrase:
    tool: str
    template: str
    slots: tuple[Slot, ...]
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class CommandMatch:
    tool: str
    args: dict[str, Any]
    phrase: str


class CommandPhrases:
    """All spoken command phrases of a set of tools."""

    def __init__(
        self, tools: Iterable[Tool], extra_phrases: Iterable[str] = (), *, name: str | None = None
    ) -> None:
        """``name``: a wake word the grammar also accepts before each command ("robot turn left")."""
        self.name = normalise(name) if name else None
        self.phrases: list[Phrase] = []
        self.extra = tuple(normalise(p) for p in extra_phrases)
        """Phrases the grammar accepts that are no tool call (answers like "yes" and "no")."""
        urgent: list[str] = []
        for t in tools:
            for template in t.phrases:
                self.phrases.append(_compile(t, template))
                if t.urgent and not _SLOT.search(template):
                    urgent.append(normalise(template))
        self.urgent = tuple(urgent)
        """The fixed phrases (no slots) of tools marked ``urgent``: safety words such as "stop"."""

    def words(self) -> set[str]:
        """Every word the grammar can produce (to check against a pronunciation dictionary)."""
        found: set[str] = set()
        for phrase in self.phrases:
            found.update(_SLOT.sub(" ", phrase.template).split())
            for slot in phrase.slots:
                for spoken in slot.words:
                    found.update(spoken.split())
        for extra in self.extra:
            found.update(extra.split())
        if self.name:
            found.update(self.name.split())
        return found

    def jsgf(self) -> str:
        """The phrases as a JSGF grammar whose public rule is ``<command>``."""
        rules: dict[str, str] = {}
        alternatives: list[str] = []
        for i, phrase in enumerate(self.phrases):
            body = phrase.template
            for slot in phrase.slots:
                rule = f"{phrase.tool}_{slot.name}_{i}"
                rules[rule] = " | ".join(slot.words)
                body = body.replace("{" + slot.name + "}", f"<{rule}>")
            alternatives.append(f"( {body} )")
        if alternatives and self.name:
            # The name may come before any command, never before an answer ("yes").
            alternatives = [f"( [ {self.name} ] ( {' | '.join(alternatives)} ) )"]
        alternatives.extend(f"( {extra} )" for extra in self.extra)
        if not alternatives:
            raise ValueError("no tool has spoken phrases: the offline recogniser has nothing to recognise")
        lines = ["#JSGF V1.0;", "grammar avagent;", "public <command> = " + " | ".join(alternatives) + ";"]
        lines.extend(f"<{name}> = {body};" for name, body in rules.items())
        return "\n".join(lines) + "\n"

    def match(self, text: str, *, exact: bool = False) -> CommandMatch | None:
        """The tool call that ``text`` asks for, or None.

        The whole text matching a phrase wins; otherwise, unless ``exact``, the longest phrase
        found inside the text (a free-speech recogniser may add "please" or "could you"). A grammar
        recogniser's text must match exactly: anything else is a path that never reached the end of
        the grammar.
        """
        said = normalise(text)
        if not said:
            return None
        best: tuple[int, CommandMatch] | None = None
        for phrase in self.phrases:
            m = phrase.pattern.fullmatch(said)
            if m is not None:
                return CommandMatch(phrase.tool, _arguments(phrase, m), phrase.template)
            if exact:
                continue
            m = phrase.pattern.search(said)
            if m is not None and (best is None or len(m.group(0)) > best[0]):
                best = (len(m.group(0)), CommandMatch(phrase.tool, _arguments(phrase, m), phrase.template))
        return best[1] if best else None

    def examples(self) -> list[str]:
        """One example of each phrase, its slots filled with their first word (an angle with ninety
        where it can be): what a free-speech recogniser is told to expect."""
        out = []
        for phrase in self.phrases:
            text = phrase.template
            for slot in phrase.slots:
                word = "ninety" if "ninety" in slot.values else slot.words[0]
                text = text.replace("{" + slot.name + "}", word)
            out.append(text)
        return out

    def spoken(self, text: str) -> str | None:
        """``text`` as the grammar says it, when the whole of it is one phrase (digits become number
        words, "what's" becomes "what is"); None otherwise. A free-speech recogniser's "Turn left
        90 degrees." is the grammar's "turn left ninety degrees"."""
        said = " ".join(_CONTRACTIONS.get(word, word) for word in normalise(text).split())
        called = f"{self.name} " if self.name and said.startswith(f"{self.name} ") else ""
        said = said[len(called) :]
        for phrase in self.phrases:
            m = phrase.pattern.fullmatch(said)
            if m is None:
                continue
            out = called + phrase.template
            for slot in phrase.slots:
                form = m.group(slot.name)
                if form.isdigit() and int(form) <= _MAX_NUMBER and number_words(int(form)) in slot.values:
                    form = number_words(int(form))
                out = out.replace("{" + slot.name + "}", form)
            return out
        return said if said in self.extra else None

    def numbers_differ(self, one: str, other: str) -> bool:
        """Whether ``one`` and ``other`` are the same phrase said with different numbers ("look at
        ninety degrees" and "look at fifty degrees"): two ways of hearing that disagree on how far
        to move."""
        a, b = self.match(one, exact=True), self.match(other, exact=True)
        if a is None or b is None or a.tool != b.tool or a.phrase != b.phrase:
            return False
        numeric = {
            slot.name for p in self.phrases if p.template == a.phrase for slot in p.slots if slot.numeric
        }
        return any(a.args.get(name) != b.args.get(name) for name in numeric)


_CONTRACTIONS = {"what's": "what is", "it's": "it is", "that's": "that is"}


def _arguments(phrase: Phrase, m: re.Match[str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for slot in phrase.slots:
        spoken = m.group(slot.name)
        args[slot.name] = slot.values[spoken] if spoken in slot.values else int(spoken)
    return args


def _compile(t: Tool, template: str) -> Phrase:
    template = normalise_template(template)
    fields = t.args_model.model_fields
    slots: list[Slot] = []
    pattern = r"\b"
    pos = 0
    for m in _SLOT.finditer(template):
        name = m.group(1)
        if name not in fields:
            raise ValueError(f"phrase {template!r} of tool {t.name!r} names an unknown argument {{{name}}}")
        slot = _slot(t.name, name, fields[name])
        slots.append(slot)
        pattern += re.escape(template[pos : m.start()])
        forms = sorted(slot.words, key=len, reverse=True)
        digits = "|[0-9]+" if slot.numeric else ""
        pattern += f"(?P<{name}>" + "|".join(re.escape(w) for w in forms) + digits + ")"
        pos = m.end()
    pattern += re.escape(template[pos:]) + r"\b"
    return Phrase(t.name, template, tuple(slots), re.compile(pattern))


def normalise_template(template: str) -> str:
    parts = _SLOT.split(template)
    out = []
    for i, part in enumerate(parts):
        out.append("{" + part + "}" if i % 2 else normalise(part))
    return " ".join(p for p in out if p)


def _slot(tool_name: str, name: str, info: FieldInfo) -> Slot:
    annotation = info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        values = {normalise(str(v)): v for v in typing.get_args(annotation)}
        return Slot(name, tuple(values), values)
    if annotation is int or annotation is float:
        low, high = _bounds(info)
        step = next((m.step for m in info.metadata if isinstance(m, Spoken)), 1)
        first = low if step == 1 else max(step, (low + step - 1) // step * step)
        numbers = range(first, high + 1, step)
        values = {number_words(n): (n if annotation is int else float(n)) for n in numbers}
        return Slot(name, tuple(values), values, numeric=True)
    if annotation is str and info.examples:
        values = {normalise(str(v)): str(v) for v in info.examples}
        return Slot(name, tuple(values), values)
    raise ValueError(
        f"argument {name!r} of tool {tool_name!r} cannot be spoken: give it a Literal type, "
        "an int with bounds, or string examples"
    )


def _bounds(info: FieldInfo) -> tuple[int, int]:
    low, high = 0, 360
    for meta in info.metadata:
        if isinstance(meta, Ge):
            low = int(typing.cast("int", meta.ge))
        elif isinstance(meta, Gt):
            low = int(typing.cast("int", meta.gt)) + 1
        elif isinstance(meta, Le):
            high = int(typing.cast("int", meta.le))
        elif isinstance(meta, Lt):
            high = int(typing.cast("int", meta.lt)) - 1
    return max(low, 0), min(high, _MAX_NUMBER)
