"""What every actuator is: commands in, state out, and a ``stop()`` that is always safe.

An actuator moves some *axes* (a base's ``heading``, a head's ``pan`` and ``tilt``, a gripper's
``width``...), each a number in its own unit. ``move`` starts a motion toward targets and returns at
once; ``stop`` halts every axis where it is, immediately, however often it is called, whatever
state the actuator is in; ``reading`` says where it is and whether it moves. Limits, speeds, who
may command it and the emergency stop are not its business: the actuator layer (``ActuatorHub``)
checks every command before an actuator sees it.

An actuator that holds a connection or a task (an MQTT motor controller) also has ``run()``: the
hub runs it while the agent runs, and it ends when cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Axis:
    """One degree of freedom: its unit, and whether it wraps around (a heading in degrees)."""

    unit: str = "deg"
    circular: bool = False


@dataclass(frozen=True, slots=True)
class Reading:
    """Where an actuator is (``position`` by axis), where it is going, and whether it moves."""

    position: dict[str, float]
    moving: bool
    target: dict[str, float] = field(default_factory=dict)


class Actuator(Protocol):
    """Something the agent moves. Implement these and register a factory (see ``registry``)."""

    name: str
    axes: Mapping[str, Axis]

    async def move(self, targets: Mapping[str, float], speed: float | None) -> None:
        """Start moving the given axes toward ``targets`` (absolute, in each axis's unit) at
        ``speed`` units per second (None: the actuator's own); return at once."""

    async def stop(self) -> None:
        """Halt every axis where it is, now. Safe to call at any time, any number of times."""

    def reading(self) -> Reading:
        """Where the actuator is now."""
        ...


@runtime_checkable
class Running(Protocol):
    """An actuator with work of its own (a connection): ``run()`` until cancelled."""

    async def run(self) -> None: ...


class ActuatorRefused(Exception):
    """A command was refused by the actuator layer; the message says why, fit for the model."""


@dataclass(frozen=True, slots=True)
class Limited:
    """A command that ran, but not as asked: ``value`` is what was done, ``why`` the reason."""

    value: float
    why: str


class Body(Protocol):
    """A robot that can turn in place, point its head, and stop: what the built-in tools drive.

    ``turn`` and ``look_at`` return ``Limited`` when the actuator layer limited the command (the
    tool's result says so), and raise ``ActuatorRefused`` when it was refused."""

    async def turn(self, degrees: float) -> Limited | None:
        """Start turning by ``degrees`` (positive: counter-clockwise, to the left)."""

    async def look_at(self, azimuth_deg: float) -> Limited | None:
        """Start pointing the head at ``azimuth_deg`` (counter-clockwise from straight ahead)."""

    async def stop(self) -> None:
        """Halt every motion at once."""
