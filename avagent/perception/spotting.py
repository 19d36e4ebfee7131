"""Safety words spotted in the speech before the turn ends: "stop" halts everything at once.

The turn a command ends only after ``turns.hangover_ms`` of silence, and the command is acted on
after that. For "stop" that wait is too long. This stage listens to the same pauses the ``asr``
stage decodes early (``SpeechSoFar``, published as soon as the user pauses) with the grammar
recogniser alone (pocketsphinx: tens of milliseconds, in its worker processes), and when what was
heard is an urgent phrase with enough confidence it publishes a ``stop`` event: every actuator
halts and every utterance is cut, there and then. A ``stop`` does not latch; the turn still goes
the usual way when it ends, and the ``stop`` tool then engages the emergency stop (or, if the
words were something else after all, nothing more happens: halting was the safe mistake).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from avagent.core.bus import Bus
from avagent.core.events import Error, Stop
from avagent.core.messages import SAMPLE_RATE
from avagent.core.text import describe_error
from avagent.perception.asr.base import Recognition, Recognizer
from avagent.perception.listening import SpeechSoFar

MAX_SPOT_S = 2.5
"""Only the last seconds of the turn so far are decoded: an urgent phrase is short, and it is the
newest words that matter ("turn left no stop")."""


def spotted(heard: Recognition, urgent: Collection[str], min_confidence: float) -> bool:
    """Whether the grammar recogniser's ``heard`` is an urgent phrase, with at least
    ``min_confidence`` (a recogniser without confidence counts as sure)."""
    sure = heard.confidence is None or heard.confidence >= min_confidence
    return heard.text in urgent and sure


class UrgentSpotter:
    """Publishes ``stop`` when a pause in the user's speech follows an urgent phrase."""

    name = "spotter"
    consumes = (SpeechSoFar,)
    produces = (Stop, Error)

    def __init__(
        self, bus: Bus, recognizer: Recognizer, urgent: Collection[str], *, min_confidence: float = 0.9
    ) -> None:
        """``recognizer`` decodes with the command grammar; ``urgent``: phrases as it spells them."""
        self._bus = bus
        self._recognizer = recognizer
        self._urgent = frozenset(urgent)
        self._min_confidence = min_confidence
        self._inbox = bus.subscribe(SpeechSoFar, name="spotter.pauses", maxsize=8)

    async def run(self) -> None:
        async for so_far in self._inbox:
            try:
                await self._spot(so_far)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = f"spotting failed: {describe_error(exc)}"
                await self._bus.publish(Error(t=self._bus.media_time(), stage=self.name, message=message))

    async def _spot(self, so_far: SpeechSoFar) -> None:
        audio = so_far.audio[-int(MAX_SPOT_S * SAMPLE_RATE) :]
        heard = await self._recognizer.transcribe(audio, SAMPLE_RATE)
        if spotted(heard, self._urgent, self._min_confidence):
            await self._bus.publish(Stop(t=self._bus.media_time(), reason=f"heard {heard.text!r}"))
