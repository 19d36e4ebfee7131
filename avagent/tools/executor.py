"""Runs tool calls by name, enforcing the rules outside any model: existence, schema, permission,
timeout. Whatever goes wrong comes back as a failed outcome with a reason, never as a crash."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from avagent.tools.registry import ToolError, ToolRegistry


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    ok: bool
    result: str


class ToolExecutor:
    """Calls tools of a registry and turns every failure into a ``ToolOutcome``."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    def checked_args(self, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """``args`` as the tool will receive them (defaults filled in), or None if they do not fit."""
        try:
            return self.registry.get(name).validate(args)
        except ToolError:
            return None

    async def execute(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        try:
            tool = self.registry.get(name)
            if tool.permission == "deny":
                return ToolOutcome(False, f"{name} is not allowed")
            return ToolOutcome(True, await tool.invoke(args))
        except asyncio.CancelledError:
            raise
        except ToolError as exc:
            return ToolOutcome(False, str(exc))
        except Exception as exc:
            return ToolOutcome(False, f"{name} failed: {type(exc).__name__}: {exc}")
