"""LangChain tools in the project's registry, under its rules."""

from __future__ import annotations

import pytest
from langchain_core.tools import StructuredTool, ToolException
from langchain_core.tools import tool as lc_tool
from pydantic import BaseModel, Field

from avagent.tools.executor import ToolExecutor
from avagent.tools.langchain_tools import from_langchain, json_schema_model, openai_tool_specs
from avagent.tools.registry import ToolRegistry


@lc_tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class Reading(BaseModel):
    sensor: str = Field(description="Which sensor.")


async def read_sensor(sensor: str) -> str:
    if sensor == "broken":
        raise ToolException("sensor offline")
    return f"{sensor}: 21.5"


async def test_a_langchain_tool_is_checked_and_called_through_the_executor() -> None:
    sensor = StructuredTool.from_function(
        coroutine=read_sensor, name="read_sensor", description="Read a sensor.", args_schema=Reading
    )
    registry = ToolRegistry([from_langchain(multiply), from_langchain(sensor, permission="deny")])
    executor = ToolExecutor(registry)
    assert (await executor.execute("multiply", {"a": 6, "b": 7})).result == "42"
    bad = await executor.execute("multiply", {"a": "six", "b": 7})
    assert not bad.ok
    assert not bad.ran
    assert (await executor.execute("read_sensor", {"sensor": "t"})).result == "read_sensor is not allowed"
    spec = openai_tool_specs(executor.visible_tools())
    assert [s["function"]["name"] for s in spec] == ["multiply"]
    assert spec[0]["function"]["parameters"]["required"] == ["a", "b"]


async def test_tool_exceptions_become_failed_outcomes() -> None:
    sensor = StructuredTool.from_function(
        coroutine=read_sensor, name="read_sensor", description="Read a sensor.", args_schema=Reading
    )
    executor = ToolExecutor(ToolRegistry([from_langchain(sensor)]))
    outcome = await executor.execute("read_sensor", {"sensor": "broken"})
    assert not outcome.ok
    assert outcome.ran
    assert "sensor offline" in outcome.result


def test_json_schema_arguments_are_validated_and_kept() -> None:
    schema = {
        "type": "object",
        "properties": {"room": {"type": "string"}, "level": {"type": "integer", "minimum": 0}},
        "required": ["room"],
    }
    model = json_schema_model("dim", schema)
    assert model.model_json_schema()["required"] == ["room"]
    checked = model.model_validate({"room": "hall", "level": 3})
    assert checked.model_extra == {"room": "hall", "level": 3}
    with pytest.raises(ValueError, match="'room' is a required property"):
        model.model_validate({"level": -1})
