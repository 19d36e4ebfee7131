"""The safety envelope: what any command to an actuator may ask, whoever asks it.

Per axis: a range (``min``, ``max``: angle or position limits), the largest change one command may
ask (``max_step``) and the top speed (``max_speed``); per actuator, a workspace: its ``x`` and
``y`` axes stay within ``workspace_radius`` of the origin. A command asking for more is clamped to
the envelope or refused, as configured (``on_limit``); either way the reason is said, so that it
can go back to whoever asked (a model learns from its tool's result). A target that is not a finite
number, or an axis the actuator does not have, is always refused.

Circular axes (a heading) have no range: only steps and speed apply to them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from avagent.io.actuators.base import ActuatorRefused, Axis

OnLimit = Literal["clamp", "refuse"]


@dataclass(frozen=True, slots=True)
class AxisLimits:
    """The envelope of one axis, in the axis's unit (None: no limit)."""

    min: float | None = None
    max: float | None = None
    max_step: float | None = None
    """The largest change of the target one command may ask, from where the axis is."""
    max_speed: float | None = None
    """Units per second; also the speed of a command that names none."""


@dataclass(frozen=True, slots=True)
class Checked:
    """A command as it may run: its targets and speed, and what was limited (empty: nothing)."""

    targets: dict[str, float]
    speed: float | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Envelope:
    """The limits of one actuator."""

    axes: Mapping[str, AxisLimits] = field(default_factory=dict)
    workspace_radius: float | None = None
    """The ``x`` and ``y`` axes stay within this distance of the origin (None: anywhere)."""
    on_limit: OnLimit = "clamp"

    def check(
        self,
        actuator: str,
        axes: Mapping[str, Axis],
        position: Mapping[str, float],
        targets: Mapping[str, float],
        speed: float | None,
    ) -> Checked:
        """``targets`` and ``speed`` within the envelope; ``ActuatorRefused`` if they cannot be."""
        notes: list[str] = []
        out: dict[str, float] = {}
        for axis, wanted in targets.items():
            if axis not in axes:
                raise ActuatorRefused(f"{actuator} has no axis {axis!r} (it has {', '.join(axes) or 'none'})")
            if not math.isfinite(wanted):
                raise ActuatorRefused(f"{actuator}.{axis}: the target is not a finite number")
            limits = self.axes.get(axis, AxisLimits())
            unit = axes[axis].unit
            here = position.get(axis, 0.0)
            target = wanted
            if limits.max_step is not None and abs(target - here) > limits.max_step + 1e-9:
                step = target - here
                self._limit(
                    notes,
                    f"{actuator}.{axis}: a step of {abs(step):g} {unit} is more than the "
                    f"{limits.max_step:g} {unit} allowed per command",
                )
                target = here + math.copysign(limits.max_step, step)
            if not axes[axis].circular:
                low = limits.min if limits.min is not None else -math.inf
                high = limits.max if limits.max is not None else math.inf
                if not low <= target <= high:
                    self._limit(
                        notes, f"{actuator}.{axis}: {target:g} {unit} is outside [{low:g}, {high:g}] {unit}"
                    )
                    target = min(max(target, low), high)
            out[axis] = target
        out = self._within_workspace(actuator, position, out, notes)
        return Checked(out, self._speed(actuator, axes, out, speed, notes), tuple(notes))

    def _within_workspace(
        self, actuator: str, position: Mapping[str, float], targets: dict[str, float], notes: list[str]
    ) -> dict[str, float]:
        radius = self.workspace_radius
        if radius is None or not ({"x", "y"} & targets.keys()):
            return targets
        x = targets.get("x", position.get("x", 0.0))
        y = targets.get("y", position.get("y", 0.0))
        distance = math.hypot(x, y)
        if distance <= radius + 1e-9:
            return targets
        self._limit(
            notes, f"{actuator}: ({x:g}, {y:g}) is {distance:g} from the origin, outside the workspace"
        )
        scale = radius / distance
        return {**targets, "x": x * scale, "y": y * scale}

    def _speed(
        self,
        actuator: str,
        axes: Mapping[str, Axis],
        targets: Mapping[str, float],
        speed: float | None,
        notes: list[str],
    ) -> float | None:
        tops = [lim.max_speed for a in targets if (lim := self.axes.get(a)) and lim.max_speed is not None]
        top = min(tops) if tops else None
        if speed is None:
            return top
        if not math.isfinite(speed) or speed <= 0:
            raise ActuatorRefused(f"{actuator}: the speed must be a positive number")
        if top is not None and speed > top + 1e-9:
            unit = next(iter(axes.values())).unit if axes else ""
            self._limit(notes, f"{actuator}: a speed of {speed:g} {unit}/s is more than the {top:g} allowed")
            return top
        return speed

    def _limit(self, notes: list[str], why: str) -> None:
        if self.on_limit == "refuse":
            raise ActuatorRefused(f"{why}")
        notes.append(why)
