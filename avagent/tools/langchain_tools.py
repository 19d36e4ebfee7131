"""LangChain tools in the project's registry, and the registry's tools in LangChain's format.

Any LangChain ``BaseTool`` (a ``@tool`` function, a toolkit's tool, an MCP server's tool) becomes a
``Tool``: the same registry, permissions, rate limits and timeouts as the built-in tools. Its
argument schema is checked before the call, whether it is a pydantic model or (MCP) a JSON schema,
so arguments that do not fit never reach it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, cast

import jsonschema
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, model_validator

from avagent.tools.registry import Permission, Tool


class JsonSchemaArguments(BaseModel):
    """Arguments checked against a JSON schema (subclassed per tool with its schema)."""

    model_config = ConfigDict(extra="allow")
    schema_: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        try:
            jsonschema.validate(data, cls.schema_)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
            raise ValueError(f"{where}: {exc.message}") from None
        except jsonschema.SchemaError as exc:
            raise ValueError(f"the tool's schema is broken: {exc.message}") from None
        return data

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return dict(cls.schema_)


def json_schema_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model that validates by ``schema`` and reports ``schema`` as its own."""
    full = {"type": "object", "properties": {}, **schema}
    model: type[BaseModel] = type(f"{name}_arguments", (JsonSchemaArguments,), {"schema_": full})
    return model


def _text(result: Any) -> str:
    """A LangChain tool's result as text (MCP tools answer with a list of content blocks)."""
    if isinstance(result, tuple) and len(result) == 2:
        result = result[0]
    if isinstance(result, list):
        parts = []
        for block in result:
            if isinstance(block, dict):
                parts.append(
                    str(block.get("text", "")) if block.get("type") == "text" else f"[{block.get('type')}]"
                )
            else:
                parts.append(str(block))
        return "\n".join(p for p in parts if p)
    if hasattr(result, "content"):
        return str(result.content)
    return "" if result is None else str(result)


def from_langchain(
    lc_tool: BaseTool,
    *,
    name: str | None = None,
    permission: Permission = "allow",
    timeout_s: float = 10.0,
    cancel_on_interrupt: bool = True,
) -> Tool:
    """The LangChain tool ``lc_tool`` as a ``Tool`` of the registry."""
    schema = lc_tool.tool_call_schema
    args_model: type[BaseModel]
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        args_model = schema
    else:
        args_model = json_schema_model(name or lc_tool.name, cast("dict[str, Any]", schema or {}))

    async def call(**kwargs: Any) -> str:
        return _text(await lc_tool.ainvoke(kwargs))

    return Tool(
        name=name or lc_tool.name,
        description=lc_tool.description or lc_tool.name,
        fn=call,
        args_model=args_model,
        permission=permission,
        timeout_s=timeout_s,
        cancel_on_interrupt=cancel_on_interrupt,
        metadata={"source": "langchain", "tool": lc_tool.name},
    )


def openai_tool_specs(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """Tools in the OpenAI function format, which every LangChain chat model's ``bind_tools`` takes."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]
