"""The spoken wake word: an always-listening agent acts only on turns addressed to it by name.

"robot, turn left" is acted on as "turn left"; "turn left" alone is not. Safety words are the
exception: a turn that is exactly an urgent phrase ("stop") is always acted on, because a user
who has to remember the name before "stop" is a user who stops too late. A turn that was acted on
opens a follow-up window (media time, from the end of the agent's answer) in which the name is not
needed, as users of voice assistants expect.

Pure and clock-free: the caller passes each turn's media time, and the end of each answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

_NAME = re.compile(r"^[A-Za-z]+( [A-Za-z]+){0,2}$")
_WORDS = re.compile(r"[a-z0-9']+")


def check_name(name: str) -> str:
    """``name`` in lower case, single-spaced; ValueError unless it is 1-3 words of letters only."""
    spaced = " ".join(name.split())
    if not _NAME.match(spaced):
        raise ValueError("the wake word must be 1-3 words of letters only")
    return spaced.lower()


def words_of(text: str) -> list[str]:
    """The words of a transcript, lower case, punctuation dropped ("Robot, turn left." -> robot turn left)."""
    return _WORDS.findall(text.lower().replace("’", "'"))


class WakeWord:
    """Decides which turns the agent acts on when it must be called by name."""

    def __init__(self, name: str, *, urgent: Iterable[str] = (), window_s: float = 8.0) -> None:
        """``name``: 1-3 words; ``urgent``: phrases acted on without it; ``window_s``: how long after
        an answer ends the next turn needs no name (0: every turn needs it)."""
        self.name = tuple(check_name(name).split())
        self._called = re.compile(r"^\W*" + r"\W+".join(self.name) + r"\b[\W_]*", re.IGNORECASE)
        self.urgent = frozenset(" ".join(words_of(p)) for p in urgent)
        self.window_s = window_s
        self._open_until = -math.inf
        """Media time until which a turn without the name is accepted."""
        self._answering = False
        """A turn was accepted and its answer has not ended yet."""

    def accepts(self, text: str, t: float) -> str | None:
        """What the agent should act on for a turn that said ``text`` at media time ``t``: the text
        after the name ("Robot, turn left." -> "turn left.") when the turn is addressed to the
        agent, else None."""
        called = self._called.match(text)
        if called is not None:
            return self._accept(text[called.end() :].strip(), t)
        if " ".join(words_of(text)) in self.urgent:
            return text.strip()
        if t <= self._open_until:
            return self._accept(text.strip(), t)
        return None

    def answer_ended(self, t: float) -> None:
        """The agent stopped speaking at media time ``t``: after an accepted turn, the follow-up
        window runs from here."""
        if self._answering or t <= self._open_until:
            self._open_until = max(self._open_until, t + self.window_s)
            self._answering = False

    def _accept(self, rest: str, t: float) -> str:
        self._answering = True
        # Until the answer ends the conversation is open; a turn that is never answered aloud
        # still closes it after a window from the turn itself.
        self._open_until = max(self._open_until, t + self.window_s)
        return rest
