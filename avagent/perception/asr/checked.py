"""Commands heard by two recognisers: a grammar match is acted on only when free speech agrees.

A grammar recogniser (pocketsphinx with the tools' phrases) forces everything it hears onto some
phrase, so "what a mess" can come out as "what time is it" with high confidence, and a British
"ninety" as "twenty". A free-speech recogniser (whisper) hears what was really said but may word
it differently ("Turn left 90 degrees."). Both decode the same utterance at the same time, each in
its own worker process, so checking costs no more latency than the slower of the two (and the
``asr`` stage starts both while the end-of-turn silence runs).

The free-speech text is put into the grammar's words by ``spoken`` (the tools' phrases: the whole
text must be one phrase, or it is no command). Then:

- both give the same phrase: that phrase, confidence 1;
- the grammar's phrase goes on where the free-speech one stops ("turn left" and "turn left ninety
  degrees"): the grammar's, at ``alone`` confidence;
- only the free-speech text is a phrase: that phrase, at ``alone`` confidence (whisper is the more
  accurate of the two on accents and noise; below 1, so a caller can treat it as less certain);
- only the grammar's text is a phrase, and the free-speech text is written much like it (whisper
  often mishears espeak's and accented voices: "What time in it?", "Don't write."; ``similarity``
  at least ``min_similarity``, 1 by default: off): the grammar's phrase, at ``alone`` confidence;
- only the grammar's text is a phrase, and the free speech is something else: the grammar's text
  at its own confidence times ``grammar_alone``, normally below the policy's threshold: other
  speech forced onto the grammar ("what a mess" as "what time is it") is the most common false
  command;
- neither: the free-speech text, confidence 0 (the policy says it did not understand).

Whisper's ``tiny.en`` mishears short commands in noise and in voices unlike its training ("Turn
right" as "Don't write.", "say thank you" as "Safe and cute."). Given an example of each command as
its prompt (``whisper.prompt_for``: the text it takes to have come just before), it hears them far
more often: 361 instead of 227 of 432 commands of avagent/sim/command_matrix.py (6 voices, 4
noises, 10-20 dB), and on other speech it still mostly writes what was said: no command came out of
the 240 utterances of the tuning sentences (``OTHER_DEV``), though it can hear one that is not there
("what a mess" in babble as "What time is it."). Whisper copies the prompt's examples: prompted with
"ninety" it writes "ninety" for "forty five"; with other angles in the examples the errors moved to
"ninety" instead (bench/hearing.py: 83.8 % of commands instead of 82.3 %, but 70 instead of 71 "stop"
of 72), so the examples stay as they are.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Callable

import numpy as np

from avagent.core.text import describe_error
from avagent.perception.asr.base import Recognition, Recognizer

log = logging.getLogger("avagent.asr")


class CheckedRecognizer:
    """``grammar`` checked by ``free``; ``spoken`` maps any text to the grammar's phrase, or None."""

    def __init__(
        self,
        grammar: Recognizer,
        free: Recognizer,
        spoken: Callable[[str], str | None],
        *,
        alone: float = 0.9,
        grammar_alone: float = 0.5,
        min_similarity: float = 1.0,
    ) -> None:
        self.name = f"{grammar.name}+{free.name}"
        self.grammar = grammar
        self.free = free
        self._spoken = spoken
        self._alone = alone
        self._grammar_alone = grammar_alone
        self._min_similarity = min_similarity

    async def start(self) -> None:
        """Start both recognisers; safe to call twice."""
        await asyncio.gather(self.grammar.start(), self.free.start())

    async def stop(self) -> None:
        """Stop both recognisers; safe to call twice."""
        await asyncio.gather(self.grammar.stop(), self.free.stop())

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        heard, said = await asyncio.gather(
            self.grammar.transcribe(audio, sample_rate),
            self.free.transcribe(audio, sample_rate),
            return_exceptions=True,
        )
        if isinstance(heard, BaseException):
            raise heard
        if isinstance(said, asyncio.CancelledError):
            raise said
        if isinstance(said, BaseException):
            # Without the check nothing is confirmed: the grammar's phrase alone is not acted on.
            log.warning("the free-speech check failed: %s", describe_error(said))
            said = Recognition("")
        return self.decide(heard, said)

    def decide(self, heard: Recognition, said: Recognition) -> Recognition:
        """The grammar's ``heard`` and the free-speech ``said`` made one (see ``combine``)."""
        return combine(
            heard,
            said,
            self._spoken,
            alone=self._alone,
            grammar_alone=self._grammar_alone,
            min_similarity=self._min_similarity,
        )


def combine(
    heard: Recognition,
    said: Recognition,
    spoken: Callable[[str], str | None],
    *,
    alone: float = 0.9,
    grammar_alone: float = 0.5,
    min_similarity: float = 1.0,
) -> Recognition:
    """The grammar's ``heard`` and the free-speech ``said`` made one, by the module's rules."""
    from_free = spoken(said.text) if said.text else None
    from_grammar = spoken(heard.text) if heard.text else None
    if from_free is not None and from_free == from_grammar:
        return Recognition(from_free, 1.0)
    if from_free is not None and from_grammar is not None and from_grammar.startswith(from_free + " "):
        # Told to expect "Turn left.", whisper sometimes stops there when "ninety degrees" follows.
        return Recognition(from_grammar, alone)
    if from_free is not None:
        return Recognition(from_free, alone)
    if from_grammar is not None:
        if similarity(said.text, from_grammar) >= min_similarity:
            return Recognition(from_grammar, alone)
        confidence = 1.0 if heard.confidence is None else heard.confidence
        return Recognition(from_grammar, round(confidence * grammar_alone, 3))
    return Recognition(said.text.strip(), 0.0)


def similarity(text: str, phrase: str) -> float:
    """How alike two texts are written, spaces and punctuation left out (0..1): whisper's "What
    time in it?" is close to "what time is it", "What a mess." is not."""
    a, b = _letters(text), _letters(phrase)
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())
