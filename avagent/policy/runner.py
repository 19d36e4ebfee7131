"""The policy stage: final transcripts in; tool calls, tool results and speech out.

Turns are answered one at a time, in order. A barge-in or a stop cancels the answer in progress
and drops answers not yet started: the user has moved on.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from avagent.agent.bus import Bus
from avagent.agent.events import BargeIn, Error, Say, StopAll, ToolCall, ToolResult, Transcript
from avagent.agent.worker import Worker
from avagent.policy.base import Policy
from avagent.tools.executor import ToolExecutor, ToolOutcome


class TurnActions:
    """``Actions`` for one turn: every act is published as an event tagged with the turn."""

    _call_ids = itertools.count(1)

    def __init__(self, bus: Bus, executor: ToolExecutor, transcript: Transcript) -> None:
        self._bus = bus
        self._executor = executor
        self._transcript = transcript

    async def say(self, text: str) -> None:
        if text.strip():
            await self._bus.publish(
                Say(
                    t=self._bus.media_time(),
                    t_capture=self._transcript.t_capture,
                    text=text,
                    turn=self._transcript.turn,
                )
            )

    async def call_tool(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        call_id = f"call_{next(self._call_ids)}"
        turn = self._transcript.turn
        cause = self._transcript.t_capture
        await self._bus.publish(
            ToolCall(
                t=self._bus.media_time(),
                t_capture=cause,
                name=name,
                args=self._executor.checked_args(name, args) or args,
                turn=turn,
                call_id=call_id,
            )
        )
        outcome = await self._executor.execute(name, args)
        await self._bus.publish(
            ToolResult(
                t=self._bus.media_time(),
                t_capture=cause,
                name=name,
                ok=outcome.ok,
                result=outcome.result,
                turn=turn,
                call_id=call_id,
            )
        )
        return outcome


class PolicyRunner:
    """Runs a ``Policy`` on each final transcript."""

    name = "policy"

    def __init__(self, bus: Bus, policy: Policy, executor: ToolExecutor) -> None:
        self._bus = bus
        self.policy = policy
        self._executor = executor
        self._inbox = bus.subscribe(Transcript, BargeIn, StopAll, name="policy.in")
        self._worker: Worker[Transcript] = Worker("policy.answers", self._answer, bus.activity)

    @property
    def busy(self) -> bool:
        """An answer is being worked out."""
        return self._worker.busy

    async def run(self) -> None:
        self._worker.start()
        try:
            async for item in self._inbox:
                if isinstance(item, Transcript):
                    if item.final:
                        await self._worker.put(item)
                else:
                    await self._worker.cancel()
        finally:
            await self._worker.stop()

    async def _answer(self, transcript: Transcript) -> None:
        try:
            await self.policy.respond(transcript, TurnActions(self._bus, self._executor, transcript))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._bus.publish(
                Error(t=self._bus.media_time(), stage=self.name, message=f"{type(exc).__name__}: {exc}")
            )
