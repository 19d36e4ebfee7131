"""Actuators: what the agent moves. ``Body`` is the interface the tools drive; ``SimulatedBody``
stands in for a robot base and head (with speed limits, so that stopping means something)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from avagent.core.angles import wrap180, wrap360


class Body(Protocol):
    """A robot that can turn in place, point its head, and stop."""

    async def turn(self, degrees: float) -> None:
        """Start turning by ``degrees`` (positive: counter-clockwise, to the left)."""

    async def look_at(self, azimuth_deg: float) -> None:
        """Start pointing the head at ``azimuth_deg`` (counter-clockwise from straight ahead)."""

    async def stop(self) -> None:
        """Halt every motion at once."""


@dataclass
class _Motion:
    start: float
    target: float
    started_at: float
    speed: float

    def position(self, now: float) -> float:
        span = self.target - self.start
        travelled = min(abs(span), self.speed * max(0.0, now - self.started_at))
        return self.start + (travelled if span >= 0 else -travelled)

    def done(self, now: float) -> bool:
        return abs(self.position(now) - self.target) < 1e-9


class SimulatedBody:
    """A body that moves at a limited speed in simulated time; ``state()`` says where it is."""

    def __init__(self, turn_speed_dps: float = 90.0, head_speed_dps: float = 180.0) -> None:
        self.turn_speed = turn_speed_dps
        self.head_speed = head_speed_dps
        self._heading = _Motion(0.0, 0.0, 0.0, turn_speed_dps)
        self._head = _Motion(0.0, 0.0, 0.0, head_speed_dps)
        self._lock = asyncio.Lock()
        self.stops = 0

    async def turn(self, degrees: float) -> None:
        async with self._lock:
            now = time.monotonic()
            here = self._heading.position(now)
            self._heading = _Motion(here, here + degrees, now, self.turn_speed)

    async def look_at(self, azimuth_deg: float) -> None:
        async with self._lock:
            now = time.monotonic()
            target = wrap180(azimuth_deg)
            self._head = _Motion(self._head.position(now), target, now, self.head_speed)

    async def stop(self) -> None:
        now = time.monotonic()
        self._heading = _Motion(
            self._heading.position(now), self._heading.position(now), now, self.turn_speed
        )
        self._head = _Motion(self._head.position(now), self._head.position(now), now, self.head_speed)
        self.stops += 1

    def state(self) -> dict[str, float | bool]:
        now = time.monotonic()
        return {
            "heading_deg": round(wrap360(self._heading.position(now)), 2),
            "head_deg": round(self._head.position(now), 2),
            "moving": not (self._heading.done(now) and self._head.done(now)),
        }
