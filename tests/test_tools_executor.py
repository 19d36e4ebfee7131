"""The executor's rules: existence, schema, permission, rate limits, confirmation, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from avagent.tools.confirm import is_yes, question
from avagent.tools.executor import Admitted, RateLimit, ToolExecutor
from avagent.tools.registry import ToolRegistry, tool

runs: list[str] = []


@tool
async def lamp(on: bool) -> str:
    """Switch the lamp."""
    runs.append("lamp")
    return "on" if on else "off"


@tool(permission="confirm")
async def door() -> str:
    """Open the door."""
    runs.append("door")
    return "open"


@tool
async def nap() -> str:
    """Sleep a while."""
    await asyncio.sleep(1.0)
    return "rested"


@pytest.fixture(autouse=True)
def clear_runs() -> None:
    runs.clear()


async def test_permissions_from_the_config_override_the_tools_own() -> None:
    executor = ToolExecutor(ToolRegistry([lamp, door]), permissions={"lamp": "deny", "door": "allow"})
    assert (await executor.execute("lamp", {"on": True})).result == "lamp is not allowed"
    assert (await executor.execute("door", {})).result == "open"
    assert runs == ["door"]


async def test_confirm_needs_someone_to_ask() -> None:
    executor = ToolExecutor(ToolRegistry([door]))
    outcome = await executor.execute("door", {})
    assert not outcome.ok
    assert not outcome.ran
    assert "confirmation" in outcome.result

    async def yes(q: str) -> bool:
        return True

    assert (await executor.execute("door", {}, yes)).result == "open"


async def test_rate_limit_window_slides() -> None:
    now = [0.0]
    executor = ToolExecutor(ToolRegistry([lamp]), rate_limits={"*": RateLimit(2, 10.0)}, clock=lambda: now[0])
    results = [(await executor.execute("lamp", {"on": True})).ok for _ in range(3)]
    assert results == [True, True, False]
    now[0] = 10.5
    assert (await executor.execute("lamp", {"on": True})).ok


async def test_timeout_from_the_config_replaces_the_tools_own() -> None:
    executor = ToolExecutor(ToolRegistry([nap]), timeout_s=0.05)
    admitted = await executor.admit("nap", {})
    assert isinstance(admitted, Admitted)
    assert admitted.tool.timeout_s == 0.05
    outcome = await executor.run(admitted)
    assert outcome.result == "nap timed out after 0.05 s"


def test_only_a_clear_yes_confirms() -> None:
    assert is_yes("Yes.")
    assert is_yes("yes please")
    assert is_yes("okay")
    for answer in ["no", "yes no", "not yet", "", "turn left", "I don't know, yes"]:
        assert not is_yes(answer), answer
    assert question("set_alarm", {"hour": 7}) == "Shall I set alarm with hour 7? Please say yes or no."
