"""Commands heard by whisper scoring the grammar's phrases, with the grammar recogniser kept at hand.

A grammar recogniser (pocketsphinx with the tools' phrases) forces everything it hears onto some
phrase, so "what a mess" comes out as "what time is it" with high confidence, and it loses accents
and noise ("stop" in babble at 10 dB, a British "ninety" as "twenty"). Whisper's own transcript
goes astray in the same places ("Stop." written "It's not."). What works is to ask whisper how
likely each phrase is, given the audio, next to its own transcript (``whisper_scoring``): a phrase
close to or above the transcript was said, and speech that is no command leaves every phrase well
below it. Whisper's transcript, read after examples of the commands, is a second way in for the
safety phrases ("stop"): when it is one of them, whole, it is taken.

The grammar recogniser stays for what it is fast at: the safety-word spotter decodes the turn so
far with it at each pause (``spotting.py``), so "stop" halts everything before the turn ends, and a
``stop`` it hears by mistake only halts (the turn's scored recognition decides what is done). It
also decodes each whole turn while whisper scores it: a command that misses the margin is still
taken when the grammar and whisper's prompted transcript both hear it (``decide``).

"Stop" is the one word a robot must never miss, and the one mistake that costs nothing to make the
other way: so whisper also scores each safety phrase on its own, and a turn in which one comes
close to the transcript (``halt_margin``) halts everything even when nothing is taken - a "stop"
lost in noise or an accent still stops the robot, and the rare other speech heard that way only
halts it (the ``stop`` event does not latch; the ``stop`` tool's emergency stop does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import numpy as np

from avagent.perception.asr.base import Recognition, Recognizer
from avagent.perception.asr.whisper import WhisperRecognizer
from avagent.perception.asr.whisper_scoring import Scored

UNSURE = 0.5
"""The confidence of a command whose margin just missed: below ``policy.min_confidence``."""
UNSURE_BAND = 1.0
"""How far (natural log per token) below the accepted margin a command is still unsure, not wrong."""
AGREED_CONFIDENCE = 0.75
"""The grammar's least confidence for its phrase to count as a second opinion (``decide``)."""


class CheckedRecognizer:
    """Recognises with ``scorer`` (a whisper recogniser given the commands), deciding by
    ``decide``; ``grammar`` is started and stopped with it, for the safety-word spotter."""

    def __init__(
        self,
        grammar: Recognizer,
        scorer: WhisperRecognizer,
        spoken: Callable[[str], str | None],
        *,
        accept_margin: float,
        agreed_margin: float,
        halt_margin: float | None = None,
        urgent: Collection[str] = (),
        numbers_differ: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.name = f"{scorer.name}-commands"
        self.grammar = grammar
        self.scorer = scorer
        self._spoken = spoken
        self._accept_margin = accept_margin
        self._agreed_margin = agreed_margin
        self._halt_margin = halt_margin
        self._urgent = frozenset(urgent)
        self._numbers_differ = numbers_differ

    async def start(self) -> None:
        """Start both recognisers; safe to call twice."""
        await asyncio.gather(self.grammar.start(), self.scorer.start())

    async def stop(self) -> None:
        """Stop both recognisers; safe to call twice."""
        await asyncio.gather(self.grammar.stop(), self.scorer.stop())

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        # The grammar (tens of milliseconds, in its own worker) runs while whisper scores; it is
        # only a second opinion, so its failure leaves whisper's decision alone.
        scored, heard = await asyncio.gather(
            self.scorer.scored(audio, sample_rate),
            self.grammar.transcribe(audio, sample_rate),
            return_exceptions=True,
        )
        if isinstance(scored, BaseException):
            raise scored
        return self.decided(scored, heard if isinstance(heard, Recognition) else None)

    def decided(self, scored: Scored, heard: Recognition | None) -> Recognition:
        """``decide`` with this recogniser's settings: what whisper's ``scored`` and the grammar's
        ``heard`` (None when it failed) make of one utterance."""
        return decide(
            scored,
            self._spoken,
            self._accept_margin,
            urgent=self._urgent,
            grammar=heard,
            agreed_margin=self._agreed_margin,
            halt_margin=self._halt_margin,
            numbers_differ=self._numbers_differ,
        )


def decide(
    scored: Scored,
    spoken: Callable[[str], str | None],
    accept_margin: float,
    *,
    urgent: Collection[str] = (),
    grammar: Recognition | None = None,
    agreed_margin: float = 0.0,
    halt_margin: float | None = None,
    numbers_differ: Callable[[str, str], bool] | None = None,
) -> Recognition:
    """What ``scored`` makes of an utterance: its command (in the grammar's words, confidence 1) when
    the margin is at least ``-accept_margin``, unless whisper's prompted transcript is the same phrase
    with another number (``numbers_differ``: "Look at ninety degrees." against "look at fifty degrees";
    the command is then only unsure, confidence ``UNSURE``); else, when whisper's prompted transcript is
    an ``urgent`` phrase ("Stop."), that phrase: told to expect commands, whisper completes other speech
    into one now and then ("turn the page" as "Turn left."), which must move nothing, but taking other
    speech for "stop" only halts, while a lost "stop" does not; else the command when its margin is at
    least ``-agreed_margin`` and two other ways of hearing say the same phrase, whole: whisper's
    prompted transcript and the ``grammar`` recogniser (with at least ``AGREED_CONFIDENCE``) - each
    alone completes other speech into a command now and then, both together seldom; else the command at
    confidence ``UNSURE`` when its margin misses by less than ``UNSURE_BAND`` (the policy asks first for
    a tool that asks, and says it did not understand otherwise); else the transcript, confidence 0.

    Whatever is taken, unless it is an urgent phrase itself, the result says to halt (``halt``)
    when the most likely urgent phrase is at least ``-halt_margin`` (None: never): a lost "stop"
    is the one mistake a robot must not make, and other speech heard as "stop" only halts it."""
    taken = _taken(scored, spoken, accept_margin, urgent, grammar, agreed_margin)
    if numbers_differ is not None and taken.confidence == 1.0 and scored.text:
        heard = spoken(scored.text)
        if heard is not None and numbers_differ(heard, taken.text):
            taken = Recognition(taken.text, UNSURE)
    near = scored.urgent_margin
    if (
        halt_margin is None
        or scored.urgent is None
        or near is None
        or near < -halt_margin
        or (taken.confidence == 1.0 and taken.text in urgent)
    ):
        return taken
    return Recognition(taken.text, taken.confidence, halt=scored.urgent)


def _taken(
    scored: Scored,
    spoken: Callable[[str], str | None],
    accept_margin: float,
    urgent: Collection[str],
    grammar: Recognition | None,
    agreed_margin: float,
) -> Recognition:
    command, margin = scored.command, scored.margin
    if command is not None and margin is not None and margin >= -accept_margin:
        return Recognition(command, 1.0)
    phrase = spoken(scored.text) if scored.text else None
    if phrase is not None and phrase in urgent:
        return Recognition(phrase, 1.0)
    if (
        command is not None
        and margin is not None
        and margin >= -agreed_margin
        and phrase == command
        and grammar is not None
        and grammar.text == command
        and (grammar.confidence or 0.0) >= AGREED_CONFIDENCE
    ):
        return Recognition(command, 1.0)
    if command is not None and margin is not None and margin >= -accept_margin - UNSURE_BAND:
        return Recognition(command, UNSURE)
    return Recognition(scored.text.strip(), 0.0)
