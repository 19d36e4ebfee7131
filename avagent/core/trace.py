"""Turn tracing: how long each step of a turn took, from the end of the user's speech.

The tracer watches the bus like any observer (no stage knows about it) and, when the first
sample of a turn's answer is heard, publishes a ``latency`` event with the delay of each step:
final transcript, the model's first token, first tool call, first ``say``, first audio out. Delays
are measured from the end of the user's speech, in media time (``steps_ms``) and on the wall clock
(``wall_ms``, which also counts the time spent computing when a file is fed as fast as possible).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from avagent.core.bus import Bus
from avagent.core.events import (
    Event,
    FirstToken,
    Latency,
    Say,
    SpeakingStarted,
    ToolCall,
    Transcript,
    TurnEnded,
)


@dataclass
class _TurnTimes:
    speech_end: float
    t_capture: float
    steps: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)


class TurnTracer:
    """Publishes one ``latency`` event per answered turn; keeps them in ``completed``."""

    name = "trace"
    consumes = (TurnEnded, Transcript, FirstToken, ToolCall, Say, SpeakingStarted)
    produces = (Latency,)
    _STEPS = (
        (Transcript, "transcript"),
        (FirstToken, "first_token"),
        (ToolCall, "tool_call"),
        (Say, "say"),
        (SpeakingStarted, "first_audio"),
    )

    def __init__(self, bus: Bus, *, keep: int = 64) -> None:
        self._bus = bus
        self._events = bus.subscribe(
            TurnEnded,
            Transcript,
            FirstToken,
            ToolCall,
            Say,
            SpeakingStarted,
            name="trace.events",
            maxsize=256,
        )
        self._turns: dict[int, _TurnTimes] = {}
        self._keep = keep
        self.completed: list[Latency] = []

    async def run(self) -> None:
        async for event in self._events:
            latency = self.observe(event)
            if latency is not None:
                await self._bus.publish(latency)

    def observe(self, event: Event) -> Latency | None:
        if isinstance(event, TurnEnded):
            self._turns[event.turn] = _TurnTimes(event.end, event.end_capture)
            while len(self._turns) > self._keep:
                self._turns.pop(next(iter(self._turns)))
            return None
        turn_id = getattr(event, "turn", None)
        times = self._turns.get(turn_id) if isinstance(turn_id, int) else None
        if times is None:
            return None
        for kind, step in self._STEPS:
            if isinstance(event, kind) and step not in times.steps:
                times.steps[step] = round((event.t - times.speech_end) * 1000.0, 1)
                times.wall[step] = round((time.monotonic() - times.t_capture) * 1000.0, 1)
        if isinstance(event, SpeakingStarted):
            assert isinstance(turn_id, int)
            del self._turns[turn_id]
            latency = Latency(
                t=event.t,
                t_capture=times.t_capture,
                turn=turn_id,
                steps_ms=dict(times.steps),
                wall_ms=dict(times.wall),
            )
            self.completed.append(latency)
            return latency
        return None
