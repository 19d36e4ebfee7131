"""The actuator stage: the e-stop and stop events reach the actuators here, and the hub is watched.

``estop`` and ``stop`` events are control events: they overtake queued data on the bus, and here
they go straight to the hub (an ``estop`` latches, a ``stop`` halts). The hub is ticked on each
audio frame when a file is fed as fast as possible (so leases and arrivals fall at the same media
time on any machine) and on a short timer otherwise. Actuators with work of their own
(``Running``) run inside this stage.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Literal

from avagent.core.bus import Bus
from avagent.core.events import Actuator as ActuatorEvent
from avagent.core.events import Error, Estop, EstopCleared, Event, Stop
from avagent.core.messages import AudioFrame
from avagent.core.streams import OverflowPolicy
from avagent.core.text import describe_error
from avagent.io.actuators.base import Running
from avagent.io.actuators.hub import ActuatorHub

log = logging.getLogger("avagent.actuators")

TICK_S = 0.02
"""How often the hub is watched when it is not ticked by audio frames."""
GIL_SWITCH_S = 0.001
"""While actuators run, Python switches threads at least this often (its default is 5 ms): a
thread holding the interpreter (a plain tool computing in pure Python) then delays the e-stop's
few steps on the event loop by about a millisecond each instead of five (bench/bus.py)."""

_running_stages = 0
_switch_before = 0.0


def _hold_switch_interval() -> None:
    global _running_stages, _switch_before
    if _running_stages == 0:
        _switch_before = sys.getswitchinterval()
        sys.setswitchinterval(min(_switch_before, GIL_SWITCH_S))
    _running_stages += 1


def _release_switch_interval() -> None:
    global _running_stages
    _running_stages -= 1
    if _running_stages == 0:
        sys.setswitchinterval(_switch_before)


class ActuatorStage:
    """Runs the actuator layer of one agent."""

    name = "actuators"
    produces: tuple[type, ...] = (ActuatorEvent, Estop, EstopCleared, Error)

    def __init__(self, bus: Bus, hub: ActuatorHub, *, ticks: Literal["frames", "timer"] = "timer") -> None:
        self.hub = hub
        self.ticks = ticks
        self.consumes: tuple[type, ...] = (Estop, EstopCleared, Stop)
        self._control = bus.subscribe(*self.consumes, name="actuators.control", maxsize=64)
        self._frames = None
        if ticks == "frames":
            self.consumes = (*self.consumes, AudioFrame)
            # Only the newest frame matters: it is a tick, not data.
            self._frames = bus.subscribe(
                AudioFrame, name="actuators.ticks", maxsize=1, policy=OverflowPolicy.KEEP_LATEST
            )

    async def run(self) -> None:
        _hold_switch_interval()
        try:
            await self._run()
        finally:
            _release_switch_interval()

    async def _run(self) -> None:
        tasks: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as group:
            for actuator in self.hub.actuators.values():
                if isinstance(actuator, Running):
                    name = f"actuators.{actuator.name}"
                    tasks.append(group.create_task(self._keep_running(actuator), name=name))
            tasks.append(group.create_task(self._tick(), name="actuators.tick"))
            try:
                async for event in self._control:
                    await self.handle(event)
            finally:
                for task in tasks:
                    task.cancel()

    async def handle(self, event: Event) -> None:
        hub = self.hub
        if isinstance(event, Estop):
            if event is not hub.last_estop:
                await hub.estop(event.source, event.reason)
        elif isinstance(event, EstopCleared):
            if event is not hub.last_cleared:
                hub.clear_estop(event.source)
        elif isinstance(event, Stop):
            await hub.halt(cause="stop", source="stop")

    async def _tick(self) -> None:
        if self._frames is not None:
            async for _frame in self._frames:
                await self.hub.tick()
            return
        while True:
            await asyncio.sleep(TICK_S)
            await self.hub.tick()

    async def _keep_running(self, actuator: Running) -> None:
        """An actuator's own work, restarted (with backoff) when it fails."""
        failures = 0
        while True:
            try:
                await actuator.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                name = getattr(actuator, "name", "actuator")
                self.hub.publish(
                    Error(t=self.hub.now(), stage=self.name, message=f"{name}: {describe_error(exc)}")
                )
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
