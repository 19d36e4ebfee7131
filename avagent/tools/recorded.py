"""Recorded tool results standing in for the tools, in a replay.

A replay runs today's agent on a recording without running its tools: nothing moves, no door
opens, and a tool whose answer changes (the time) answers as it did. Each call that passes the
executor's rules is answered with the recorded result of the same tool called with the same
arguments, in the order they were recorded. A call the recording does not have is not run either:
it fails, saying so, and a comparison shows it.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from avagent.tools.executor import ToolOutcome


def call_key(name: str, args: Mapping[str, Any]) -> str:
    """One string for a tool and its arguments, whatever their order."""
    return json.dumps([name, args], sort_keys=True, ensure_ascii=False, default=str)


class RecordedOutcomes:
    """Recorded results by call; an executor's ``stand_in``."""

    def __init__(self, records: Iterable[Mapping[str, Any]]) -> None:
        """``records``: the recording's ``/tools`` messages (``name``, ``args``, ``ok``, ``result``)."""
        self._left: dict[str, deque[ToolOutcome]] = {}
        for record in records:
            name, args = record.get("name"), record.get("args")
            if not isinstance(name, str) or not isinstance(args, dict):
                continue
            outcome = ToolOutcome(bool(record.get("ok")), str(record.get("result", "")))
            self._left.setdefault(call_key(name, args), deque()).append(outcome)
        self.missing: list[str] = []
        """The calls that had no recorded result, as ``name(args)``."""

    def __call__(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        left = self._left.get(call_key(name, args))
        if left:
            return left.popleft()
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        self.missing.append(f"{name}({shown})")
        return ToolOutcome(
            False, f"not run: the recording has no result for {name}({shown}) (replay with --live to run it)"
        )
