"""Who is commanding: the voice policy, the robot bus, a call's page, the follow-the-speaker
behaviour. The source of a command travels with the task that makes it (a context variable), so
that a tool needs no extra argument: the MQTT bridge runs its calls ``commanding_as("bus")``, and
everything else is the voice policy unless it says otherwise.

Each source has a priority; a command from a source holds the actuator it moved for ``hold_s``,
and commands from lower sources are refused meanwhile (as twist_mux does on ROS). A source with a
``lease_s`` must renew its motion (command again) within that time, or the actuator stops by
itself: a remote controller that goes silent cannot leave the robot moving.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from avagent.io.actuators.base import ActuatorRefused

DEFAULT_SOURCE = "voice"

command_source: ContextVar[str] = ContextVar("avagent_command_source", default=DEFAULT_SOURCE)


@contextlib.contextmanager
def commanding_as(source: str) -> Iterator[None]:
    """Commands made inside the block (and in tasks it starts) come from ``source``."""
    token = command_source.set(source)
    try:
        yield
    finally:
        command_source.reset(token)


@dataclass(frozen=True, slots=True)
class Source:
    """A command source's rank and rules."""

    priority: int
    hold_s: float = 2.0
    """After it commands an actuator, lower sources are refused for this long."""
    lease_s: float | None = None
    """Its motions stop by themselves unless renewed within this long (None: they run to the end)."""


DEFAULT_SOURCES: Mapping[str, Source] = {
    "follow": Source(priority=0, hold_s=0.0),
    "voice": Source(priority=10),
    "call": Source(priority=20, lease_s=5.0),
    "bus": Source(priority=30, lease_s=5.0),
}


class Arbiter:
    """Which source holds which actuator, and until when (in the time of ``now``)."""

    def __init__(self, sources: Mapping[str, Source], now: Callable[[], float]) -> None:
        self.sources = dict(sources)
        self._now = now
        self._held: dict[str, tuple[str, float]] = {}
        self._last: dict[str, tuple[str, float]] = {}

    def source(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            raise ActuatorRefused(f"{name!r} is not a known command source") from None

    def check(self, actuator: str, source: str) -> None:
        """Refuse, with the reason, a command from ``source`` while a higher source holds ``actuator``."""
        rank = self.source(source).priority
        held = self._held.get(actuator)
        if held is None:
            return
        holder, until = held
        left = until - self._now()
        if holder != source and left > 0 and self.source(holder).priority > rank:
            raise ActuatorRefused(
                f"{actuator} is held by {holder} (priority {self.source(holder).priority}, "
                f"above {source}'s {rank}) for another {left:.1f} s"
            )

    def commanded(self, actuator: str, source: str) -> None:
        """``source`` moved ``actuator`` now: it holds it, and its lease starts again."""
        now = self._now()
        self._held[actuator] = (source, now + self.source(source).hold_s)
        self._last[actuator] = (source, now)

    def last_source(self, actuator: str) -> str | None:
        last = self._last.get(actuator)
        return last[0] if last is not None else None

    def lease_expired(self, actuator: str) -> bool:
        """The source of ``actuator``'s last command has a lease, and it ran out."""
        last = self._last.get(actuator)
        if last is None:
            return False
        source, since = last
        lease = self.sources.get(source, Source(0)).lease_s
        return lease is not None and self._now() - since > lease

    def release(self, actuator: str) -> None:
        """``actuator`` was halted: nobody holds it any more."""
        self._held.pop(actuator, None)
        self._last.pop(actuator, None)
