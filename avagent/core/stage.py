"""Stages: the parts of an agent that run while it runs, and what flows between them.

A stage reads the message types it ``consumes`` from its own streams on the bus and publishes the
types it ``produces``; ``run()`` returns once its streams are closed. Sources are stages too: they
consume nothing and produce frames, and their ``run()`` returns when the input ends. Declaring
both sides makes the wiring readable in one place: ``describe`` lists it (``avagent run
--describe``), and a test holds every stage to its declaration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from avagent.core.events import Event


class Stage(Protocol):
    """A part of the agent with one long-running ``run()`` that reads from and publishes to the bus."""

    @property
    def name(self) -> str: ...

    @property
    def consumes(self) -> tuple[type, ...]:
        """What it reads from the bus (subclasses included)."""
        ...

    @property
    def produces(self) -> tuple[type, ...]:
        """What it publishes."""
        ...

    async def run(self) -> None: ...


def message_name(kind: type) -> str:
    """An event's type in the JSON contract (``turn_ended``), or a frame's class name."""
    if issubclass(kind, Event):
        return kind.type
    return kind.__name__


@dataclass(frozen=True, slots=True)
class Wiring:
    """One stage's place in the data flow."""

    stage: str
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    sources: tuple[str, ...]
    """The stages that produce what it consumes."""
    readers: tuple[str, ...]
    """The stages that consume what it produces."""


def describe(stages: Iterable[Stage]) -> list[Wiring]:
    """The data flow between ``stages``, stage by stage."""
    stages = list(stages)

    def feeds(producer: Stage, consumer: Stage) -> bool:
        return producer is not consumer and any(
            issubclass(p, c) for p in producer.produces for c in consumer.consumes
        )

    return [
        Wiring(
            stage=stage.name,
            consumes=tuple(message_name(k) for k in stage.consumes),
            produces=tuple(message_name(k) for k in stage.produces),
            sources=tuple(sorted({o.name for o in stages if feeds(o, stage)})),
            readers=tuple(sorted({o.name for o in stages if feeds(stage, o)})),
        )
        for stage in stages
    ]
