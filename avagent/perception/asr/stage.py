"""The speech recognition stage: finished user turns in, transcripts out."""

from __future__ import annotations

import asyncio

from avagent.agent.bus import Bus
from avagent.agent.events import Error, Transcript, UserTurn
from avagent.perception.asr.base import Recognizer


class Transcriber:
    """Transcribes each user turn, in order; a failure is reported and the next turn goes on.

    A turn in which speech was heard but nothing recognised gives a transcript with empty text,
    so that the policy can say it did not understand.
    """

    name = "asr"

    def __init__(self, bus: Bus, recognizer: Recognizer) -> None:
        self._bus = bus
        self.recognizer = recognizer
        self._turns = bus.subscribe(UserTurn, name="asr.turns", maxsize=32)

    async def run(self) -> None:
        async for turn in self._turns:
            try:
                result = await self.recognizer.transcribe(turn.audio, turn.sample_rate)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._bus.publish(
                    Error(t=self._bus.media_time(), stage=self.name, message=f"{type(exc).__name__}: {exc}")
                )
                continue
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
