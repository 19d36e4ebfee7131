"""Tools: typed Python functions the agent can call, and the registry that holds them.

A tool's argument schema is derived from its type hints (through pydantic), its description from
its docstring. ``phrases`` are spoken command templates such as ``"turn {direction} {degrees}
degrees"``: the offline policy recognises exactly these (see ``avagent.tools.phrases``). A tool may
carry a rate limit of its own (an actuator that must not be driven in a loop); the executor
enforces it unless the config names the tool.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

Permission = Literal["allow", "confirm", "deny"]


class ToolError(Exception):
    """A tool call could not be made or failed; the message is fit to show the model or the user."""


class ToolArgumentError(ToolError):
    """The arguments do not fit the tool's schema."""


class UnknownToolError(ToolError):
    pass


class ToolBusyError(ToolError):
    """The call was refused before it started: no worker is free to run it."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``calls`` calls in any ``per_s`` seconds."""

    calls: int
    per_s: float


SyncRunner = Callable[[Callable[..., Any], Mapping[str, Any]], Awaitable[Any]]
"""Runs a plain (blocking) function with keyword arguments off the event loop."""


@dataclass(frozen=True)
class Tool:
    """A callable the agent may use, with its schema and the rules it is bound by."""

    name: str
    description: str
    fn: Callable[..., Any]
    args_model: type[BaseModel]
    phrases: tuple[str, ...] = ()
    permission: Permission = "allow"
    timeout_s: float = 10.0
    cancel_on_interrupt: bool = True
    """When the user interrupts while this tool runs: cancel it (True) or let it finish (False)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    """The tool's own rate limit (the config's ``tools.rate_limits`` for its name replaces it)."""
    urgent: bool = False
    """Its spoken phrases are safety words: they may be acted on the moment they are heard, before
    the turn ends (``hearing.spot_urgent``), like "stop"."""

    @property
    def parameters(self) -> dict[str, Any]:
        """JSON schema of the arguments."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """Checked and converted arguments, or ``ToolArgumentError`` saying what is wrong."""
        try:
            model = self.args_model.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
            )
            raise ToolArgumentError(f"invalid arguments for {self.name}: {problems}") from None
        checked = {name: getattr(model, name) for name in type(model).model_fields}
        # Models that validate by a JSON schema (tools of MCP servers) keep their arguments as extras.
        checked.update(model.model_extra or {})
        return checked

    async def invoke(self, args: dict[str, Any], run_sync: SyncRunner | None = None) -> str:
        """Validate ``args`` and run the tool within its timeout; the result as text. A plain
        function runs through ``run_sync`` (the executor's own threads), else on asyncio's default
        threads."""
        checked = self.validate(args)
        if inspect.iscoroutinefunction(self.fn):
            call: Awaitable[Any] = self.fn(**checked)
        elif run_sync is not None:
            # A plain function might block: it runs on a worker thread, never on the event loop.
            call = run_sync(self.fn, checked)
        else:
            call = asyncio.to_thread(self.fn, **checked)
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call
        except TimeoutError:
            raise ToolError(f"{self.name} timed out after {self.timeout_s:g} s") from None
        return bounded_result("" if result is None else str(result))


MAX_RESULT_CHARS = 16_000
"""A tool's result is cut to this many characters: it goes to the model, into the memory and into
a ``tool_result`` event, and a tool (an MCP server's above all) is input from outside."""


def bounded_result(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return f"{text[:MAX_RESULT_CHARS]}... [cut: {len(text) - MAX_RESULT_CHARS} more characters]"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    phrases: Iterable[str] = (),
    permission: Permission = "allow",
    timeout_s: float = 10.0,
    cancel_on_interrupt: bool = True,
    rate_limit: RateLimit | None = None,
    urgent: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    phrases: Iterable[str] = (),
    permission: Permission = "allow",
    timeout_s: float = 10.0,
    cancel_on_interrupt: bool = True,
    rate_limit: RateLimit | None = None,
    urgent: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a ``Tool`` from a typed function; usable as ``@tool`` or ``@tool(phrases=[...])``."""

    def build(f: Callable[..., Any]) -> Tool:
        return Tool(
            name=name or f.__name__,
            description=description or _first_paragraph(inspect.getdoc(f) or f.__name__),
            fn=f,
            args_model=_args_model(f),
            phrases=tuple(phrases),
            permission=permission,
            timeout_s=timeout_s,
            cancel_on_interrupt=cancel_on_interrupt,
            rate_limit=rate_limit,
            urgent=urgent,
        )

    return build(fn) if fn is not None else build


def _first_paragraph(doc: str) -> str:
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


def _args_model(fn: Callable[..., Any]) -> type[BaseModel]:
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model: type[BaseModel] = create_model(
        f"{fn.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


class ToolRegistry:
    """The tools an agent may use, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, item: Tool | Callable[..., Any]) -> Tool:
        """Add a ``Tool`` (or a plain typed function, made into one)."""
        t = item if isinstance(item, Tool) else tool(item)
        if t.name in self._tools:
            raise ValueError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(f"no tool named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)
