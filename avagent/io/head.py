"""A pan-tilt head: the interface a behaviour drives, and a simulated one.

Pan is in degrees counter-clockwise from the array's +x axis (the robot's front), tilt positive
upward. A head has angle limits and a top speed; ``point`` starts a motion toward a target (clamped
to the limits) and returns at once, ``stop`` freezes it where it is. A real head implements the
same ``PanTiltHead`` protocol (a serial servo driver, an MQTT robot bus) and is passed to the
agent in place of the simulated one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from avagent.core.angles import wrap180


@dataclass(frozen=True, slots=True)
class HeadLimits:
    pan_min_deg: float = -170.0
    pan_max_deg: float = 170.0
    tilt_min_deg: float = -30.0
    tilt_max_deg: float = 30.0
    max_speed_dps: float = 120.0
    """Top angular speed of each axis, degrees per second."""

    def clamp(self, pan_deg: float, tilt_deg: float) -> tuple[float, float]:
        pan = min(max(pan_deg, self.pan_min_deg), self.pan_max_deg)
        tilt = min(max(tilt_deg, self.tilt_min_deg), self.tilt_max_deg)
        return pan, tilt

    def pan_for(self, azimuth_deg: float) -> float:
        """The pan angle that faces ``azimuth_deg`` as nearly as the limits allow."""
        return self.clamp(wrap180(azimuth_deg), 0.0)[0]


@dataclass(frozen=True, slots=True)
class HeadPose:
    pan_deg: float
    tilt_deg: float
    moving: bool


class PanTiltHead(Protocol):
    """What a behaviour needs of a head."""

    limits: HeadLimits

    async def point(self, pan_deg: float, tilt_deg: float = 0.0) -> None:
        """Start moving toward ``(pan, tilt)`` (clamped to the limits); returns at once."""

    async def stop(self) -> None:
        """Stop where the head is now."""

    def pose(self) -> HeadPose:
        """Where the head is now."""
        ...

    def target(self) -> tuple[float, float]:
        """Where the head is going (or is)."""
        ...


@dataclass(slots=True)
class _Axis:
    start: float
    goal: float
    since: float

    def at(self, now: float, speed: float) -> float:
        span = self.goal - self.start
        moved = min(abs(span), speed * max(0.0, now - self.since))
        return self.start + (moved if span >= 0 else -moved)


class SimulatedPanTiltHead:
    """A head that moves at its top speed toward each target, in the time of ``now``.

    Give it the agent's media clock (``clock.now``) and it moves in media time, so a recording
    processed faster than real time still shows where a head would have been, at every moment.
    """

    def __init__(self, limits: HeadLimits | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or HeadLimits()
        self._now = now
        start = now()
        self._pan = _Axis(0.0, 0.0, start)
        self._tilt = _Axis(0.0, 0.0, start)
        self.commands: list[tuple[float, float, float]] = []
        """Every accepted ``(time, pan, tilt)`` target: how often the head was asked to move."""
        self.stops = 0

    async def point(self, pan_deg: float, tilt_deg: float = 0.0) -> None:
        pan, tilt = self.limits.clamp(pan_deg, tilt_deg)
        now = self._now()
        speed = self.limits.max_speed_dps
        self._pan = _Axis(self._pan.at(now, speed), pan, now)
        self._tilt = _Axis(self._tilt.at(now, speed), tilt, now)
        self.commands.append((now, pan, tilt))

    async def stop(self) -> None:
        now = self._now()
        speed = self.limits.max_speed_dps
        pan, tilt = self._pan.at(now, speed), self._tilt.at(now, speed)
        self._pan = _Axis(pan, pan, now)
        self._tilt = _Axis(tilt, tilt, now)
        self.stops += 1

    def pose(self) -> HeadPose:
        now = self._now()
        speed = self.limits.max_speed_dps
        pan, tilt = self._pan.at(now, speed), self._tilt.at(now, speed)
        moving = abs(pan - self._pan.goal) > 1e-9 or abs(tilt - self._tilt.goal) > 1e-9
        return HeadPose(round(pan, 3), round(tilt, 3), moving)

    def target(self) -> tuple[float, float]:
        return self._pan.goal, self._tilt.goal
