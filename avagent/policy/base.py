"""What a policy is, and what it may do in a turn."""

from __future__ import annotations

from typing import Any, Protocol

from avagent.agent.events import Transcript
from avagent.tools.executor import ToolOutcome


class Actions(Protocol):
    """The ways a policy acts during one turn; each leaves an event on the bus."""

    async def say(self, text: str) -> None:
        """Speak ``text`` (sentence by sentence, as soon as each is ready)."""

    async def call_tool(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        """Call a tool under the registry's rules; failures come back as outcomes."""


class Policy(Protocol):
    """Decides what the agent does when the user has said something."""

    name: str

    async def respond(self, transcript: Transcript, actions: Actions) -> None: ...
