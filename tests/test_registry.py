"""Tools from typed functions: schemas, validation, timeouts, and failures turned into outcomes."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Literal

import pytest
from pydantic import Field

from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import Tool, ToolArgumentError, ToolRegistry, tool


@tool(phrases=["move {direction}"], timeout_s=0.2)
async def move(
    direction: Literal["forward", "back"],
    metres: Annotated[float, Field(gt=0, le=5, description="How far.")] = 1.0,
) -> str:
    """Drive the robot.

    More text that is not part of the description.
    """
    return f"moved {direction} {metres}"


def test_schema_and_description_come_from_the_signature() -> None:
    assert isinstance(move, Tool)
    assert move.name == "move"
    assert move.description == "Drive the robot."
    schema = move.parameters
    assert schema["required"] == ["direction"]
    assert schema["properties"]["direction"]["enum"] == ["forward", "back"]
    assert schema["properties"]["metres"]["description"] == "How far."
    assert schema["properties"]["metres"]["exclusiveMinimum"] == 0
    assert schema["additionalProperties"] is False


def test_validation_names_the_bad_argument() -> None:
    assert move.validate({"direction": "back"}) == {"direction": "back", "metres": 1.0}
    with pytest.raises(ToolArgumentError, match="direction"):
        move.validate({"direction": "sideways"})
    with pytest.raises(ToolArgumentError, match="metres"):
        move.validate({"direction": "back", "metres": 50})
    with pytest.raises(ToolArgumentError, match="speed: Extra inputs are not permitted"):
        move.validate({"direction": "back", "speed": 3})


async def test_plain_functions_run_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()

    def where() -> str:
        """Which thread am I on."""
        return "loop" if threading.get_ident() == loop_thread else "worker"

    assert await tool(where).invoke({}) == "worker"


async def test_executor_turns_every_failure_into_an_outcome() -> None:
    @tool
    async def broken() -> str:
        """Always fails."""
        raise RuntimeError("motor fault")

    @tool(timeout_s=0.05)
    async def slow() -> str:
        """Never finishes in time."""
        await asyncio.sleep(5)
        return "late"

    @tool(permission="deny")
    def forbidden() -> str:
        """Not allowed."""
        return "done"

    executor = ToolExecutor(ToolRegistry([move, broken, slow, forbidden]))
    assert (await executor.execute("move", {"direction": "forward"})).ok
    outcomes = {
        "unknown": await executor.execute("fly", {}),
        "invalid": await executor.execute("move", {"direction": 3}),
        "raises": await executor.execute("broken", {}),
        "timeout": await executor.execute("slow", {}),
        "denied": await executor.execute("forbidden", {}),
    }
    assert not any(o.ok for o in outcomes.values())
    assert "no tool named" in outcomes["unknown"].result
    assert "direction" in outcomes["invalid"].result
    assert "motor fault" in outcomes["raises"].result
    assert "timed out" in outcomes["timeout"].result
    assert "not allowed" in outcomes["denied"].result


def test_registry_refuses_duplicate_names() -> None:
    registry = ToolRegistry([move])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(move)
    assert "move" in registry
    assert registry.names() == ["move"]
