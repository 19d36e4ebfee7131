"""Simulated actuators: a base that turns in place and a pan-tilt head, moving at a limited speed
in the time of ``now`` (the agent's media clock), so that stopping means something and a recording
processed faster than real time still shows where the robot would have been.

``SimulatedBody`` is the older stand-in for a whole robot (``Body``: turn, look at, stop), kept for
callers that drive a body directly, without the actuator layer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from avagent.core.angles import wrap180, wrap360
from avagent.io.actuators.base import Axis, Reading
from avagent.io.head import PanTiltHead


@dataclass(frozen=True, slots=True)
class Motion:
    """A straight move from ``start`` to ``goal`` at ``speed`` units per second, from ``since``."""

    start: float
    goal: float
    since: float
    speed: float

    def at(self, now: float) -> float:
        span = self.goal - self.start
        moved = min(abs(span), self.speed * max(0.0, now - self.since))
        return self.start + (moved if span >= 0 else -moved)

    def done(self, now: float) -> bool:
        return abs(self.at(now) - self.goal) < 1e-9

    def halted(self, now: float) -> Motion:
        here = self.at(now)
        return Motion(here, here, now, self.speed)


class SimulatedBase:
    """A base that turns in place: one circular axis, ``heading`` (degrees, counter-clockwise)."""

    axes: Mapping[str, Axis] = {"heading": Axis("deg", circular=True)}

    def __init__(
        self, name: str = "base", *, turn_speed_dps: float = 90.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.turn_speed_dps = turn_speed_dps
        self._now = now
        self._heading = Motion(0.0, 0.0, now(), turn_speed_dps)
        self.stops = 0
        self.moves = 0

    async def move(self, targets: Mapping[str, float], speed: float | None) -> None:
        if "heading" not in targets:
            return
        now = self._now()
        here = self._heading.at(now)
        # A circular axis's target counts from where it is, read in [0, 360): 370 from 10 is a
        # full turn to the left, not none (the actuator layer picks the way round).
        goal = here + (targets["heading"] - wrap360(here))
        self._heading = Motion(here, goal, now, speed or self.turn_speed_dps)
        self.moves += 1

    async def stop(self) -> None:
        self._heading = self._heading.halted(self._now())
        self.stops += 1

    def reading(self) -> Reading:
        now = self._now()
        return Reading(
            {"heading": round(wrap360(self._heading.at(now)), 3)},
            not self._heading.done(now),
            {"heading": round(wrap360(self._heading.goal), 3)},
        )


class SimulatedHead:
    """A ``PanTiltHead`` (the simulated one, or a real driver) as an actuator: axes ``pan`` and
    ``tilt`` in degrees. The head clamps to its own limits and moves at its own top speed."""

    axes: Mapping[str, Axis] = {"pan": Axis("deg"), "tilt": Axis("deg")}

    def __init__(self, head: PanTiltHead, name: str = "head") -> None:
        self.name = name
        self.head = head

    async def move(self, targets: Mapping[str, float], speed: float | None) -> None:
        pan, tilt = self.head.target()
        await self.head.point(targets.get("pan", pan), targets.get("tilt", tilt))

    async def stop(self) -> None:
        await self.head.stop()

    def reading(self) -> Reading:
        pose = self.head.pose()
        pan, tilt = self.head.target()
        return Reading(
            {"pan": pose.pan_deg, "tilt": pose.tilt_deg},
            pose.moving,
            {"pan": round(pan, 3), "tilt": round(tilt, 3)},
        )


class SimulatedBody:
    """A body that moves at a limited speed on the wall clock; ``state()`` says where it is."""

    def __init__(self, turn_speed_dps: float = 90.0, head_speed_dps: float = 180.0) -> None:
        self.turn_speed = turn_speed_dps
        self.head_speed = head_speed_dps
        self._heading = Motion(0.0, 0.0, 0.0, turn_speed_dps)
        self._head = Motion(0.0, 0.0, 0.0, head_speed_dps)
        self._lock = asyncio.Lock()
        self.stops = 0

    async def turn(self, degrees: float) -> None:
        async with self._lock:
            now = time.monotonic()
            here = self._heading.at(now)
            self._heading = Motion(here, here + degrees, now, self.turn_speed)

    async def look_at(self, azimuth_deg: float) -> None:
        async with self._lock:
            now = time.monotonic()
            self._head = Motion(self._head.at(now), wrap180(azimuth_deg), now, self.head_speed)

    async def stop(self) -> None:
        now = time.monotonic()
        self._heading = self._heading.halted(now)
        self._head = self._head.halted(now)
        self.stops += 1

    def state(self) -> dict[str, float | bool]:
        now = time.monotonic()
        return {
            "heading_deg": round(wrap360(self._heading.at(now)), 2),
            "head_deg": round(self._head.at(now), 2),
            "moving": not (self._heading.done(now) and self._head.done(now)),
        }
