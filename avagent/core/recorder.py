"""A stage that keeps the events published on a bus: for tests, tools and notebooks."""

from __future__ import annotations

from avagent.core.bus import Bus
from avagent.core.events import Event


class EventRecorder:
    """Keeps every published event of the given types (all events by default), in order."""

    name = "recorder"
    produces: tuple[type, ...] = ()

    def __init__(self, bus: Bus, *types: type[Event]) -> None:
        self.consumes: tuple[type, ...] = types or (Event,)
        self._events = bus.subscribe(*self.consumes, name="recorder.events", maxsize=4096)
        self.events: list[Event] = []

    async def run(self) -> None:
        async for event in self._events:
            self.events.append(event)
