"""The actuator layer as the tools and behaviours see it.

``HubBody`` is the ``Body`` the built-in tools drive: ``turn`` moves the base's heading, ``look_at``
the head's pan, ``stop`` is the emergency stop. ``GuardedHead`` is the ``PanTiltHead`` the
follow-the-speaker behaviour points: its commands come from the lowest source (``follow``), so any
other source takes the head from it, and the e-stop holds it too.
"""

from __future__ import annotations

from avagent.core.angles import wrap180, wrap360
from avagent.io.actuators.base import ActuatorRefused, Limited
from avagent.io.actuators.hub import ActuatorHub
from avagent.io.head import HeadLimits, HeadPose, PanTiltHead


class HubBody:
    """A ``Body`` on an ``ActuatorHub``: the base and head named in the config."""

    def __init__(self, hub: ActuatorHub, *, base: str | None = "base", head: str | None = "head") -> None:
        self.hub = hub
        self.base = base
        self.head = head

    async def turn(self, degrees: float) -> Limited | None:
        if self.base is None:
            raise ActuatorRefused("this robot has no base to turn")
        before = self.hub.get(self.base).reading().position.get("heading", 0.0)
        checked = await self.hub.command(self.base, {"heading": degrees}, relative=True)
        if not checked.notes:
            return None
        return Limited(checked.targets["heading"] - before, "; ".join(checked.notes))

    async def look_at(self, azimuth_deg: float) -> Limited | None:
        if self.head is None:
            raise ActuatorRefused("this robot has no head to point")
        checked = await self.hub.command(self.head, {"pan": wrap180(azimuth_deg)})
        if not checked.notes:
            return None
        return Limited(wrap360(checked.targets["pan"]), "; ".join(checked.notes))

    async def stop(self) -> None:
        await self.hub.estop("tool", "the stop tool was called")


class GuardedHead:
    """A ``PanTiltHead`` whose moves go through the actuator layer as the ``follow`` source; its
    pose is the head actuator's, its limits those of ``head``."""

    def __init__(self, hub: ActuatorHub, head: PanTiltHead, name: str = "head") -> None:
        self.hub = hub
        self.head = head
        self.limits: HeadLimits = head.limits
        self.name = name
        self.refused = 0
        """Moves the actuator layer refused (another source held the head, or the e-stop)."""

    async def point(self, pan_deg: float, tilt_deg: float = 0.0) -> None:
        try:
            await self.hub.command(self.name, {"pan": pan_deg, "tilt": tilt_deg}, source="follow")
        except ActuatorRefused:
            self.refused += 1

    async def stop(self) -> None:
        await self.hub.halt([self.name])

    def pose(self) -> HeadPose:
        reading = self.hub.get(self.name).reading()
        return HeadPose(reading.position.get("pan", 0.0), reading.position.get("tilt", 0.0), reading.moving)

    def target(self) -> tuple[float, float]:
        reading = self.hub.get(self.name).reading()
        goal = reading.target or reading.position
        return goal.get("pan", 0.0), goal.get("tilt", 0.0)
