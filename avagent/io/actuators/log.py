"""An actuator that only writes what it is told: a dry run of a robot, or a stand-in for a part
that is not there yet. It arrives at once."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from avagent.io.actuators.base import Axis, Reading

log = logging.getLogger("avagent.actuators")


class LogActuator:
    """Logs each command and stop (logger ``avagent.actuators``) and keeps the last targets."""

    def __init__(self, name: str = "log", axes: Sequence[str] = ("heading", "pan", "tilt")) -> None:
        self.name = name
        self.axes: Mapping[str, Axis] = {a: Axis("deg", circular=a == "heading") for a in axes}
        self._position = dict.fromkeys(axes, 0.0)
        self.commands: list[tuple[dict[str, float], float | None]] = []
        self.stops = 0

    async def move(self, targets: Mapping[str, float], speed: float | None) -> None:
        log.info(
            "%s: move %s at %s", self.name, dict(targets), speed if speed is not None else "its own speed"
        )
        self.commands.append((dict(targets), speed))
        self._position.update(targets)

    async def stop(self) -> None:
        log.info("%s: stop", self.name)
        self.stops += 1

    def reading(self) -> Reading:
        return Reading(dict(self._position), False, dict(self._position))
