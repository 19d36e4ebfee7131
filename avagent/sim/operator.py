"""A person at the robot: does something (presses the e-stop's clear key, pushes a button) when the
input reaches a given media time, so that a recording shows what a live session would."""

from __future__ import annotations

from collections.abc import Callable

from avagent.core.bus import Bus
from avagent.core.messages import AudioFrame

Action = Callable[[], object]


class ScriptedOperator:
    """Does each ``(t, action)`` of ``script`` once the input has reached media time ``t``."""

    name = "operator"
    consumes = (AudioFrame,)
    produces: tuple[type, ...] = ()

    def __init__(self, bus: Bus, script: list[tuple[float, Action]]) -> None:
        self._script = sorted(script, key=lambda item: item[0])
        # The input's frames are the clock: in lockstep each frame is handled before the next.
        self._frames = bus.subscribe(AudioFrame, name="operator.frames", maxsize=256)

    async def run(self) -> None:
        async for frame in self._frames:
            while self._script and self._script[0][0] <= frame.t_end:
                _t, action = self._script.pop(0)
                action()
