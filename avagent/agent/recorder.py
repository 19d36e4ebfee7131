"""A stage that keeps the events published on a bus: for tests, tools and notebooks."""

from __future__ import annotations

from typing import Any

from avagent.agent.bus import Bus
from avagent.agent.events import Event


class EventRecorder:
    """Keeps every published event of the given types (all events by default), in order."""

    name = "recorder"

    def __init__(self, bus: Bus, *types: type[Event]) -> None:
        self._events = bus.subscribe(*(types or (Event,)), name="recorder.events", maxsize=4096)
        self.events: list[Any] = []

    async def run(self) -> None:
        async for event in self._events:
            self.events.append(event)
