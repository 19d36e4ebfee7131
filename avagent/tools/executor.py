"""Runs tool calls by name, enforcing the rules outside any model: existence, schema, permission,
rate limit, confirmation, timeout. Whatever goes wrong comes back as a failed outcome with a
reason, never as a crash.

The rules bind every call alike, whoever asked for it: a model led astray by text in a transcript
or in a tool result can change what it asks for, never what is allowed. A call is first
*admitted* (``admit``: every check, and the spoken yes for ``confirm`` tools), then *run*
(``run``); a caller that is interrupted between the two has started nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from avagent.tools.confirm import question
from avagent.tools.registry import Permission, Tool, ToolError, ToolRegistry

Confirm = Callable[[str], Awaitable[bool]]
"""Ask the user ``question`` aloud; True only for a spoken yes."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    ok: bool
    result: str
    ran: bool = True
    """False when the call was refused before reaching the tool (unknown, invalid, denied...)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    calls: int
    per_s: float


@dataclass(frozen=True, slots=True)
class Admitted:
    """A call that passed every rule and may run now."""

    tool: Tool
    args: dict[str, Any]


class ToolExecutor:
    """Calls tools of a registry under permissions and rate limits; every failure is an outcome.

    ``permissions`` override each tool's own; ``rate_limits`` are per tool name, ``"*"`` for every
    tool without its own; ``timeout_s`` replaces every tool's own timeout.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        permissions: Mapping[str, Permission] | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.permissions = dict(permissions or {})
        self.rate_limits = dict(rate_limits or {})
        self.timeout_s = timeout_s
        self._clock = clock
        self._history: dict[str, deque[float]] = {}

    def permission(self, name: str) -> Permission:
        if name in self.permissions:
            return self.permissions[name]
        return self.registry.get(name).permission if name in self.registry else "deny"

    def visible_tools(self) -> list[Tool]:
        """The tools a model may be offered: every registered tool not denied."""
        return [t for t in self.registry if self.permission(t.name) != "deny"]

    def tool(self, name: str) -> Tool | None:
        return self.registry.get(name) if name in self.registry else None

    def checked_args(self, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """``args`` as the tool will receive them (defaults filled in), or None if they do not fit."""
        try:
            return self.registry.get(name).validate(args)
        except ToolError:
            return None

    async def admit(
        self, name: str, args: dict[str, Any], confirm: Confirm | None = None
    ) -> Admitted | ToolOutcome:
        """Check a call against every rule; an ``Admitted`` call may run, an outcome says why not."""
        try:
            tool = self.registry.get(name)
            checked = tool.validate(args)
        except ToolError as exc:
            return ToolOutcome(False, str(exc), ran=False)
        permission = self.permission(name)
        if permission == "deny":
            return ToolOutcome(False, f"{name} is not allowed", ran=False)
        limit = self._limit_for(name)
        if limit is not None and not self._has_room(name, limit):
            return ToolOutcome(
                False, f"{name} is rate limited: at most {limit.calls} calls per {limit.per_s:g} s", ran=False
            )
        if permission == "confirm":
            if confirm is None:
                return ToolOutcome(
                    False, f"{name} needs the user's confirmation, which cannot be asked here", ran=False
                )
            if not await confirm(question(name, checked)):
                return ToolOutcome(False, f"the user did not confirm {name}", ran=False)
        if limit is not None:
            self._history.setdefault(name, deque()).append(self._clock())
        if self.timeout_s is not None:
            tool = dataclasses.replace(tool, timeout_s=self.timeout_s)
        return Admitted(tool, checked)

    async def run(self, admitted: Admitted) -> ToolOutcome:
        """Run an admitted call within its timeout; failures come back as outcomes."""
        try:
            return ToolOutcome(True, await admitted.tool.invoke(admitted.args))
        except asyncio.CancelledError:
            raise
        except ToolError as exc:
            return ToolOutcome(False, str(exc))
        except Exception as exc:
            return ToolOutcome(False, f"{admitted.tool.name} failed: {type(exc).__name__}: {exc}")

    async def execute(self, name: str, args: dict[str, Any], confirm: Confirm | None = None) -> ToolOutcome:
        """``admit`` then ``run``."""
        admitted = await self.admit(name, args, confirm)
        if isinstance(admitted, ToolOutcome):
            return admitted
        return await self.run(admitted)

    def _limit_for(self, name: str) -> RateLimit | None:
        return self.rate_limits.get(name, self.rate_limits.get("*"))

    def _has_room(self, name: str, limit: RateLimit) -> bool:
        times = self._history.setdefault(name, deque())
        now = self._clock()
        while times and now - times[0] >= limit.per_s:
            times.popleft()
        return len(times) < limit.calls
