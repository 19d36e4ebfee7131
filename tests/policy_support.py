"""What the policy tests share: a policy stage on a bus with a recorder, and test tools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from avagent.core.bus import Bus
from avagent.core.events import Event, Transcript
from avagent.core.recorder import EventRecorder
from avagent.policy.base import Policy
from avagent.policy.llm import LLMPolicy
from avagent.policy.memory import ConversationMemory
from avagent.policy.runner import PolicyRunner
from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import Tool, ToolRegistry, tool


@dataclass
class Counter:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def make_tools(counter: Counter) -> list[Tool]:
    @tool
    async def turn(direction: str, degrees: int = 90) -> str:
        """Turn the robot in place."""
        counter.calls.append(("turn", {"direction": direction, "degrees": degrees}))
        return f"Turning {direction} {degrees} degrees."

    @tool
    async def weather(city: str) -> str:
        """The weather in a city."""
        counter.calls.append(("weather", {"city": city}))
        return f"Sunny in {city}, 21 degrees."

    @tool
    async def broken() -> str:
        """A tool that fails."""
        counter.calls.append(("broken", {}))
        raise RuntimeError("the motor is jammed")

    @tool(timeout_s=0.2)
    async def slow() -> str:
        """A tool that takes too long."""
        counter.calls.append(("slow", {}))
        await asyncio.sleep(5)
        return "never"

    @tool(permission="deny")
    async def delete_everything() -> str:
        """Delete every file."""
        counter.calls.append(("delete_everything", {}))
        return "deleted"

    @tool(permission="confirm")
    async def unlock_door() -> str:
        """Unlock the front door."""
        counter.calls.append(("unlock_door", {}))
        return "The door is unlocked."

    return [turn, weather, broken, slow, delete_everything, unlock_door]


@dataclass
class PolicyHarness:
    bus: Bus
    runner: PolicyRunner
    recorder: EventRecorder
    executor: ToolExecutor
    counter: Counter
    turn: int = 0

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.recorder.events if e.type == kind]

    def said(self) -> list[str]:
        return [e["text"] for e in self.events("say")]

    async def hear(self, text: str, *, settle: bool = True) -> None:
        """The user said ``text`` (a final transcript of a new turn)."""
        self.turn += 1
        await self.bus.publish(Transcript(t=float(self.turn), text=text, turn=self.turn))
        if settle:
            await self.settled()

    async def publish(self, event: Event) -> None:
        await self.bus.publish(event)

    async def settled(self) -> None:
        """Wait until everything published has been handled and no answer is in progress (one
        waiting for the user's words does not count as work in flight)."""
        async with asyncio.timeout(10.0):
            await self.bus.activity.settled()
            while self.runner.busy:
                await asyncio.sleep(0.005)
                await self.bus.activity.settled()


def llm_policy(model: BaseChatModel, executor: ToolExecutor, **kwargs: Any) -> LLMPolicy:
    kwargs.setdefault("memory", ConversationMemory(20, 3000))
    return LLMPolicy(model, executor, **kwargs)


@asynccontextmanager
async def policy_stage(
    make_policy: Any,
    *,
    tools: list[Tool] | None = None,
    counter: Counter | None = None,
    executor_kwargs: dict[str, Any] | None = None,
    confirm_timeout_s: float = 2.0,
) -> AsyncIterator[PolicyHarness]:
    """A running policy stage: ``make_policy(executor)`` gives the policy."""
    counter = counter if counter is not None else Counter()
    registry = ToolRegistry(tools if tools is not None else make_tools(counter))
    executor = ToolExecutor(registry, **(executor_kwargs or {}))
    bus = Bus()
    policy: Policy = make_policy(executor)
    runner = PolicyRunner(bus, policy, executor, confirm_timeout_s=confirm_timeout_s)
    recorder = EventRecorder(bus)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(recorder.run())]
    try:
        yield PolicyHarness(bus, runner, recorder, executor, counter)
    finally:
        bus.close()
        await asyncio.wait(tasks, timeout=2.0)
        for task in tasks:
            task.cancel()
