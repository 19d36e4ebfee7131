"""The actuator layer: every command to every actuator passes here, outside any model.

A command is refused while the emergency stop is engaged, while a higher-priority source holds the
actuator, or past the actuator's rate limit; it is clamped or refused by the safety envelope; then
the actuator starts moving, and an ``actuator`` event says so. ``estop`` halts every actuator at
once (all together, never waiting on a command in progress or on a queue) and latches until
``clear_estop``. ``tick`` is called often (each audio frame, or on a timer): it stops motions
whose source's lease ran out and reports actuators that arrived.

Time (holds, leases, rate limits) is the agent's media time, like every rule inside the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from avagent.core.angles import wrap180
from avagent.core.events import Actuator as ActuatorEvent
from avagent.core.events import Error, Estop, EstopCleared, Event
from avagent.core.text import describe_error
from avagent.io.actuators.base import Actuator, ActuatorRefused, Reading
from avagent.io.actuators.envelope import Checked, Envelope
from avagent.io.actuators.sources import DEFAULT_SOURCES, Arbiter, Source, command_source

log = logging.getLogger("avagent.actuators")

STOP_CONFIRM_S = 0.05
"""An actuator whose ``stop()`` has not returned within this long is reported (and not waited for)."""
COMMAND_TIMEOUT_S = 1.0
"""An actuator that has not taken a command within this long is halted and the command refused."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``calls`` commands to one actuator in any ``per_s`` seconds."""

    calls: int
    per_s: float


@dataclass(frozen=True, slots=True)
class EstopState:
    source: str
    reason: str


class ActuatorHub:
    """The actuators of one agent, behind the envelope, the source priorities and the e-stop."""

    def __init__(
        self,
        actuators: Iterable[Actuator],
        *,
        envelopes: Mapping[str, Envelope] | None = None,
        sources: Mapping[str, Source] = DEFAULT_SOURCES,
        rate_limit: RateLimit | None = None,
        now: Callable[[], float],
        publish: Callable[[Event], None] = lambda _event: None,
    ) -> None:
        self.actuators: dict[str, Actuator] = {}
        for actuator in actuators:
            if actuator.name in self.actuators:
                raise ValueError(f"two actuators are named {actuator.name!r}")
            self.actuators[actuator.name] = actuator
        self.envelopes = dict(envelopes or {})
        self.arbiter = Arbiter(sources, now)
        self.rate_limit = rate_limit
        self.now = now
        self.publish = publish
        self.estop_state: EstopState | None = None
        self.last_estop: Estop | None = None
        """The last ``estop`` event the hub published (the stage does not act on it twice)."""
        self.last_cleared: EstopCleared | None = None
        self._generation = 0
        self._history: dict[str, deque[float]] = {}
        self._moving: dict[str, bool] = {}
        self._unconfirmed: set[asyncio.Task[None]] = set()
        self.halts = 0
        """Actuator stops made (e-stops, stops, leases, lost links), for tests and benchmarks."""

    @property
    def estopped(self) -> bool:
        return self.estop_state is not None

    def get(self, name: str) -> Actuator:
        try:
            return self.actuators[name]
        except KeyError:
            raise ActuatorRefused(f"there is no actuator named {name!r}") from None

    # --- commands ---------------------------------------------------------------------------------

    async def command(
        self,
        name: str,
        targets: Mapping[str, float],
        *,
        relative: bool = False,
        speed: float | None = None,
        source: str | None = None,
    ) -> Checked:
        """Move actuator ``name``: ``targets`` by axis (added to where it is with ``relative``).
        Returns what was done (its notes say what the envelope limited); ``ActuatorRefused`` with
        the reason when the command is refused."""
        source = source if source is not None else command_source.get()
        if self.estop_state is not None:
            raise ActuatorRefused(self._estop_reason())
        actuator = self.get(name)
        self.arbiter.check(name, source)
        self._check_rate(name)
        position = actuator.reading().position
        absolute: dict[str, float] = {}
        for axis, value in targets.items():
            here = position.get(axis, 0.0)
            circular = axis in actuator.axes and actuator.axes[axis].circular
            if relative:
                absolute[axis] = here + value
            elif circular:
                absolute[axis] = here + wrap180(value - here)  # the shorter way round
            else:
                absolute[axis] = value
        envelope = self.envelopes.get(name, Envelope())
        checked = envelope.check(name, actuator.axes, position, absolute, speed)
        generation = self._generation
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await actuator.move(checked.targets, checked.speed)
        except TimeoutError:
            await self._stop_all([actuator], cause="stop", source=source)
            raise ActuatorRefused(f"{name} did not take the command within {COMMAND_TIMEOUT_S:g} s") from None
        if generation != self._generation:
            # An e-stop came while the actuator took the command: the command must not survive it.
            await self._stop_all([actuator], cause="estop", source=source)
            raise ActuatorRefused(self._estop_reason())
        self.arbiter.commanded(name, source)
        if self.rate_limit is not None:
            self._history.setdefault(name, deque()).append(self.now())
        self._report(actuator, actuator.reading(), cause="command", source=source)
        return checked

    def _check_rate(self, name: str) -> None:
        limit = self.rate_limit
        if limit is None:
            return
        times = self._history.setdefault(name, deque())
        now = self.now()
        while times and now - times[0] >= limit.per_s:
            times.popleft()
        if len(times) >= limit.calls:
            raise ActuatorRefused(
                f"{name} is rate limited: at most {limit.calls} commands per {limit.per_s:g} s"
            )

    def _estop_reason(self) -> str:
        state = self.estop_state
        assert state is not None
        why = f": {state.reason}" if state.reason else ""
        return f"the emergency stop is engaged (from {state.source}{why}) until it is cleared"

    # --- stopping ---------------------------------------------------------------------------------

    async def estop(self, source: str, reason: str = "") -> bool:
        """Halt every actuator now and refuse commands until ``clear_estop``. Returns whether it
        was newly engaged (a repeated e-stop halts again but is one e-stop)."""
        first = self.estop_state is None
        if first:
            self.estop_state = EstopState(source, reason)
        self._generation += 1
        await self._stop_all(self.actuators.values(), cause="estop", source=source)
        if first:
            log.info("emergency stop from %s%s", source, f": {reason}" if reason else "")
            self.last_estop = Estop(t=self.now(), source=source, reason=reason)
            self.publish(self.last_estop)
        return first

    def clear_estop(self, source: str) -> bool:
        """Let actuators take commands again; False when no e-stop was engaged."""
        if self.estop_state is None:
            return False
        self.estop_state = None
        self.last_cleared = EstopCleared(t=self.now(), source=source)
        self.publish(self.last_cleared)
        return True

    async def halt(
        self, names: Iterable[str] | None = None, *, cause: str = "stop", source: str = ""
    ) -> None:
        """Stop the named actuators (all by default) without latching anything."""
        chosen = self.actuators.values() if names is None else [self.get(n) for n in names]
        await self._stop_all(list(chosen), cause=cause, source=source)

    async def halt_commanded_by(self, sources: Iterable[str], *, cause: str) -> None:
        """Stop the actuators whose last command came from one of ``sources`` (a link was lost)."""
        wanted = set(sources)
        chosen = [a for n, a in self.actuators.items() if self.arbiter.last_source(n) in wanted]
        if chosen:
            await self._stop_all(chosen, cause=cause, source="")

    async def _stop_all(self, actuators: Iterable[Actuator], *, cause: str, source: str) -> None:
        chosen = list(actuators)
        tasks = {asyncio.ensure_future(self._stop_one(a)): a for a in chosen}
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=STOP_CONFIRM_S)
        for task in pending:
            # Not cancelled: a stop in flight (a message to a motor controller) must still go out.
            self._unconfirmed.add(task)
            task.add_done_callback(self._unconfirmed.discard)
            name = tasks[task].name
            self.publish(
                Error(t=self.now(), stage="actuators", message=f"{name} has not confirmed its stop yet")
            )
        for task in done:
            actuator = tasks[task]
            if task.exception() is None:
                self.arbiter.release(actuator.name)
                self._report(actuator, actuator.reading(), cause=cause, source=source)

    async def _stop_one(self, actuator: Actuator) -> None:
        self.halts += 1
        try:
            await actuator.stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.publish(
                Error(
                    t=self.now(),
                    stage="actuators",
                    message=f"{actuator.name} failed to stop: {describe_error(exc)}",
                )
            )
            raise

    # --- watching ---------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Stop motions whose lease ran out; report actuators that stopped moving by themselves."""
        for name, actuator in self.actuators.items():
            reading = actuator.reading()
            if reading.moving and self.arbiter.lease_expired(name):
                await self._stop_all([actuator], cause="lease", source=self.arbiter.last_source(name) or "")
                continue
            if self._moving.get(name, False) and not reading.moving:
                self._report(actuator, reading, cause="arrived", source="")
            elif reading.moving and not self._moving.get(name, False):
                self._report(actuator, reading, cause="moving", source="")

    def _report(self, actuator: Actuator, reading: Reading, *, cause: str, source: str) -> None:
        self._moving[actuator.name] = reading.moving
        self.publish(
            ActuatorEvent(
                t=self.now(),
                name=actuator.name,
                moving=reading.moving,
                position=dict(reading.position),
                target=dict(reading.target),
                cause=cause,
                source=source,
            )
        )
