"""Bounds on one model answer: how much it may say, how long the model may take, how many tools
one step may ask for.

A model can stream without end (a loop, a runaway generation, a hostile server). Every answer
gets an ``AnswerBudget``: words are counted as the text streams in, across all the answer's steps,
and the time the model takes is measured on the wall clock (time the user holds the floor is not
the model's and does not count). When either limit is reached the policy closes the model's
stream and ends the answer with an ``AnswerCut``; what was said stays said.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_ANSWER_CHARS = 200_000
"""Characters one answer may stream, text and tool-call arguments together, all steps together (far
above ``max_answer_words`` of text: what it bounds is arguments that never end)."""
LONG_WORD = 30
"""Characters of text without spaces that count as one word: text without spaces is no way
around the word limit."""


@dataclass(frozen=True, slots=True)
class AnswerLimits:
    """The limits of one answer (named as in the ``policy`` section of the config)."""

    max_answer_words: int = 300
    """The most one answer says, all its steps together; the model is then cut off."""
    max_answer_s: float = 30.0
    """The longest the model may take over one answer, all its steps together, on the wall clock."""
    cut_notice: str = "I will stop there."
    """Said when an answer is cut at one of those limits."""
    max_tool_calls_per_step: int = 8
    """Tool calls one model step may ask for; the ones beyond are refused and the model is told."""


class AnswerCut(Exception):
    """The answer reached one of its limits; the model's stream has been closed."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"answer cut by {setting}: {reason}")
        self.setting = setting
        """The limit that cut it: ``max_answer_words`` or ``max_answer_s``."""
        self.reason = reason
        """What happened, for the conversation memory and the error event."""


def word_weight(token: str) -> int:
    """How many words one run of text without spaces counts for."""
    return max(1, -(-len(token) // LONG_WORD))


def count_words(text: str) -> int:
    return sum(word_weight(token) for token in text.split())


class WordCounter:
    """Counts the words of text that streams in pieces (a word may be cut across two pieces)."""

    def __init__(self) -> None:
        self._done = 0
        self._partial = ""

    @property
    def total(self) -> int:
        """Words so far, the one still being streamed included."""
        return self._done + (word_weight(self._partial) if self._partial else 0)

    def feed(self, text: str) -> int:
        """Add ``text``; returns ``total``."""
        if not text:
            return self.total
        text = self._partial + text
        tokens = text.split()
        self._partial = tokens.pop() if tokens and not text[-1].isspace() else ""
        self._done += sum(word_weight(t) for t in tokens)
        # A run without spaces never ends a word: count it as it grows, keep only its tail.
        while len(self._partial) > LONG_WORD:
            self._done += 1
            self._partial = self._partial[LONG_WORD:]
        return self.total


class AnswerBudget:
    """What is left of one answer's limits; made when the answer starts.

    Only the model's time counts: from each request to the end of its stream, less the time the
    user held the floor. Tools and confirmations between the steps have limits of their own.
    """

    def __init__(self, limits: AnswerLimits) -> None:
        self.limits = limits
        self.words_said = 0
        """Words of the sentences said so far."""
        self.words_before = 0
        """Words the model streamed in the steps before the current one."""
        self._loop = asyncio.get_running_loop()
        self._used_s = 0.0
        self._chars = 0
        self.deadline = self._loop.time() + limits.max_answer_s
        """Loop time at which the model will have taken all its time (in the current step)."""

    def now(self) -> float:
        return self._loop.time()

    def start_step(self) -> None:
        """A request to the model starts: its time runs from now."""
        self.deadline = self.now() + self.limits.max_answer_s - self._used_s

    def end_step(self) -> None:
        """The request is over: the time it took is spent."""
        self._used_s = self.limits.max_answer_s - self.time_left()

    def time_left(self) -> float:
        return self.deadline - self.now()

    def extend(self, seconds: float) -> None:
        """``seconds`` that were not the model's (the user held the floor) do not count."""
        self.deadline += max(0.0, seconds)

    def take_chars(self, count: int) -> None:
        """``count`` more characters streamed; past ``MAX_ANSWER_CHARS`` the answer is cut."""
        self._chars += count
        if self._chars > MAX_ANSWER_CHARS:
            raise AnswerCut("max_answer_chars", f"the model streamed more than {MAX_ANSWER_CHARS} characters")

    def fits(self, sentence: str) -> bool:
        """Whether ``sentence`` may still be said."""
        return self.words_said + count_words(sentence) <= self.limits.max_answer_words

    def spend(self, sentence: str) -> None:
        self.words_said += count_words(sentence)

    def over_words(self, streamed_this_step: int) -> bool:
        return self.words_before + streamed_this_step > self.limits.max_answer_words

    def words_cut(self) -> AnswerCut:
        n = self.limits.max_answer_words
        return AnswerCut("max_answer_words", f"the answer reached {n} words, the most one answer may say")

    def time_cut(self) -> AnswerCut:
        s = self.limits.max_answer_s
        return AnswerCut("max_answer_s", f"the model took {s:g} s, the longest one answer may take")
