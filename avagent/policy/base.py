"""What a policy is, and what it may do in a turn."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from avagent.core.events import Event, Transcript
from avagent.tools.executor import ToolOutcome


class Actions(Protocol):
    """The ways a policy acts during one turn; each leaves an event on the bus.

    Every act waits while the user may be cutting in (from the first sound of their speech until
    it is clear whether it is a barge-in or a backchannel), so nothing new is said or started then.
    """

    async def say(self, text: str, audio: np.ndarray | None = None, audio_rate: int = 0) -> None:
        """Speak ``text`` (sentence by sentence, as soon as each is ready); with ``audio`` (mono
        float32 at ``audio_rate``: a model's own voice saying it), play that instead."""

    async def call_tool(self, name: str, args: dict[str, Any], call_id: str | None = None) -> ToolOutcome:
        """Call a tool under the executor's rules; failures come back as outcomes."""

    async def checkpoint(self) -> None:
        """Return at once, or when the user turns out not to be cutting in (a policy that streams
        calls this between chunks, so that its generation holds too)."""

    async def first_token(self) -> None:
        """Note that the model's first output arrived (for the turn's latency trace)."""

    async def report(self, problem: str) -> None:
        """Publish ``problem`` as an ``error`` event of the policy stage; the turn goes on."""


class Policy(Protocol):
    """Decides what the agent does when the user has said something."""

    name: str

    async def respond(self, transcript: Transcript, actions: Actions) -> None: ...


@runtime_checkable
class ObservingPolicy(Protocol):
    """A policy that also follows what happens between turns: perception, what was really heard,
    tool results that arrive after an interruption."""

    name: str
    observes: tuple[type[Event], ...]

    async def respond(self, transcript: Transcript, actions: Actions) -> None: ...

    def observe(self, event: Event) -> None:
        """Called in bus order for each event of a type in ``observes``; must not block."""
