"""The speech recognition stage: finished user turns in, transcripts out.

Recognition starts early: when the user pauses (``SpeechSoFar``), the turn's audio so far is
transcribed at once, while the end-of-turn silence runs. If the turn does end there, the words
are ready when it does; if the user goes on, that work is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib

from avagent.core.bus import Bus
from avagent.core.events import Error, Stop, Transcript, TurnEnded
from avagent.core.messages import SAMPLE_RATE
from avagent.perception.asr.base import Recognition, Recognizer
from avagent.perception.listening import SpeechSoFar


class Transcriber:
    """Transcribes each user turn, in order; a failure is reported and the next turn goes on.

    A turn in which speech was heard but nothing recognised gives a transcript with empty text,
    so that the policy can say it did not understand. A recognition that says a safety word may
    have been said (``Recognition.halt``) publishes a ``stop`` event first.
    """

    name = "asr"
    consumes = (TurnEnded, SpeechSoFar)
    produces = (Transcript, Stop, Error)

    def __init__(self, bus: Bus, recognizer: Recognizer, *, early: bool = True) -> None:
        self._bus = bus
        self.recognizer = recognizer
        self._inbox = bus.subscribe(TurnEnded, SpeechSoFar, name="asr.turns", maxsize=32)
        self._early_enabled = early
        self._early: tuple[float, float, asyncio.Task[Recognition]] | None = None

    async def run(self) -> None:
        try:
            async for item in self._inbox:
                if isinstance(item, TurnEnded):
                    await self._transcribe(item)
                elif isinstance(item, SpeechSoFar) and self._early_enabled:
                    self._start_early(item)
        finally:
            self._drop_early()

    def _start_early(self, so_far: SpeechSoFar) -> None:
        self._drop_early()
        task = asyncio.create_task(self.recognizer.transcribe(so_far.audio, SAMPLE_RATE), name="asr.early")
        self._bus.activity.track(task)
        self._early = (so_far.start, so_far.end, task)

    def _drop_early(self) -> None:
        if self._early is not None:
            task = self._early[2]
            task.cancel()
            # A cancelled or failed guess is of no interest: the turn is transcribed again.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._early = None

    async def _recognise(self, turn: TurnEnded) -> Recognition:
        if self._early is not None and self._early[:2] == (turn.start, turn.end):
            task, self._early = self._early[2], None
            with contextlib.suppress(Exception):
                result = await task
                return result
        self._drop_early()
        return await self.recognizer.transcribe(turn.audio, turn.sample_rate)

    async def _transcribe(self, turn: TurnEnded) -> None:
        try:
            result = await self._recognise(turn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._bus.publish(
                Error(t=self._bus.media_time(), stage=self.name, message=f"{type(exc).__name__}: {exc}")
            )
            return
        if result.halt is not None:
            # First, so that whatever moves halts before the words are acted on.
            await self._bus.publish(Stop(t=self._bus.media_time(), reason=f"may have heard {result.halt!r}"))
        await self._bus.publish(
            Transcript(
                t=self._bus.media_time(),
                t_capture=turn.end_capture,
                text=result.text,
                final=True,
                turn=turn.turn,
                confidence=result.confidence,
            )
        )
