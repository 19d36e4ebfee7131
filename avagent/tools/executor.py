"""Runs tool calls by name, enforcing the rules outside any model: existence, schema, permission,
rate limit, confirmation, timeout. Whatever goes wrong comes back as a failed outcome with a
reason, never as a crash.

The rules bind every call alike, whoever asked for it: a model led astray by text in a transcript
or in a tool result can change what it asks for, never what is allowed. A call is first
*admitted* (``admit``: every check, and the spoken yes for ``confirm`` tools), then *run*
(``run``); a caller that is interrupted between the two has started nothing.

Tools that are plain (blocking) functions run on a few threads of the executor's own
(``SyncWorkers``), never on asyncio's default threads that speech synthesis and recognition use:
a tool stuck past its timeout keeps its thread, and when every thread is held the next call is
refused at once, but the agent never goes mute or deaf. ``close()`` lets the threads go.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from avagent.core.text import describe_error
from avagent.tools.confirm import question
from avagent.tools.registry import (
    Permission,
    RateLimit,
    Tool,
    ToolBusyError,
    ToolError,
    ToolRegistry,
)

__all__ = ["Admitted", "Confirm", "RateLimit", "StandIn", "SyncWorkers", "ToolExecutor", "ToolOutcome"]

Confirm = Callable[[str], Awaitable[bool]]
"""Ask the user ``question`` aloud; True only for a spoken yes."""

StandIn = Callable[[str, dict[str, Any]], "ToolOutcome | None"]
"""What a call's outcome is instead of running the tool (a recording's result, in a replay); None:
run the tool."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    ok: bool
    result: str
    ran: bool = True
    """False when the call was refused before reaching the tool (unknown, invalid, denied...)."""


_Job = tuple["concurrent.futures.Future[Any]", Callable[..., Any], Mapping[str, Any]]


class SyncWorkers:
    """At most ``size`` threads for plain tools, started at the first call, let go by ``close``.

    A thread is *held* from the moment a call takes it until the function returns, whether or not
    anyone still waits for the result (a timed-out call does not free its thread: Python cannot
    stop one). A call that finds every thread held is refused at once with ``ToolBusyError``.
    The threads are daemons, so a tool that never returns cannot keep the process alive.
    """

    def __init__(self, size: int, name: str = "avagent-tool") -> None:
        if size < 1:
            raise ValueError("SyncWorkers needs at least one thread")
        self.size = size
        self.name = name
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        self._held = 0

    @property
    def running(self) -> bool:
        """Threads have been started and not let go."""
        return self._jobs is not None

    @property
    def held(self) -> int:
        """Threads running a tool's function now (stuck ones included)."""
        with self._lock:
            return self._held

    async def call(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
        """``fn(**kwargs)`` on one of the threads; cancelling the wait does not stop ``fn``."""
        job: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._held >= self.size:
                raise ToolBusyError(
                    f"all {self.size} threads for plain tools are still held by tools that have not returned"
                )
            self._held += 1
            jobs = self._jobs
            if jobs is None:
                jobs = self._jobs = self._start()
        jobs.put((job, fn, kwargs))
        return await asyncio.wrap_future(job)

    def close(self) -> None:
        """Let the threads go once they are free; returns at once (stuck ones are not waited
        for). A later call starts new threads. Safe to call twice."""
        with self._lock:
            jobs, self._jobs = self._jobs, None
            self._held = 0
        if jobs is not None:
            for _ in range(self.size):
                jobs.put(None)

    def _start(self) -> queue.SimpleQueue[_Job | None]:
        jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        for i in range(self.size):
            threading.Thread(target=self._work, args=(jobs,), name=f"{self.name}-{i}", daemon=True).start()
        return jobs

    def _work(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while (item := jobs.get()) is not None:
            job, fn, kwargs = item
            if not job.set_running_or_notify_cancel():
                self._release(jobs)
                continue
            try:
                result = fn(**kwargs)
            except BaseException as exc:  # handed to the caller, whatever it is
                self._release(jobs)
                job.set_exception(exc)
            else:
                # Freed before the result is handed over, so that the caller's next call finds it free.
                self._release(jobs)
                job.set_result(result)

    def _release(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        with self._lock:
            # Threads of a closed generation no longer count for the new one.
            if jobs is self._jobs and self._held > 0:
                self._held -= 1


@dataclass(frozen=True, slots=True)
class Admitted:
    """A call that passed every rule and may run now."""

    tool: Tool
    args: dict[str, Any]


class ToolExecutor:
    """Calls tools of a registry under permissions and rate limits; every failure is an outcome.

    ``permissions`` override each tool's own; ``rate_limits`` are per tool name and replace a
    tool's own, ``"*"`` for every tool without one; ``timeout_s`` replaces every tool's own
    timeout; plain (blocking) tools run on ``sync_workers`` threads of the executor's own.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        permissions: Mapping[str, Permission] | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        timeout_s: float | None = None,
        sync_workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.permissions = dict(permissions or {})
        self.rate_limits = dict(rate_limits or {})
        self.timeout_s = timeout_s
        self.sync_workers = SyncWorkers(sync_workers)
        self._clock = clock
        self._history: dict[str, deque[float]] = {}
        self.stand_in: StandIn | None = None
        """When set, admitted calls are answered by it instead of running the tool."""

    def close(self) -> None:
        """Let the threads of plain tools go (without waiting for stuck ones); safe to call twice."""
        self.sync_workers.close()

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
        if self.stand_in is not None:
            outcome = self.stand_in(admitted.tool.name, admitted.args)
            if outcome is not None:
                return outcome
        try:
            return ToolOutcome(True, await admitted.tool.invoke(admitted.args, self.sync_workers.call))
        except asyncio.CancelledError:
            raise
        except ToolBusyError as exc:
            return ToolOutcome(False, f"{admitted.tool.name} was refused: {exc}", ran=False)
        except ToolError as exc:
            return ToolOutcome(False, str(exc))
        except Exception as exc:
            return ToolOutcome(False, f"{admitted.tool.name} failed: {describe_error(exc)}")

    async def execute(self, name: str, args: dict[str, Any], confirm: Confirm | None = None) -> ToolOutcome:
        """``admit`` then ``run``."""
        admitted = await self.admit(name, args, confirm)
        if isinstance(admitted, ToolOutcome):
            return admitted
        return await self.run(admitted)

    def _limit_for(self, name: str) -> RateLimit | None:
        if name in self.rate_limits:
            return self.rate_limits[name]
        own = self.registry.get(name).rate_limit if name in self.registry else None
        return own if own is not None else self.rate_limits.get("*")

    def _has_room(self, name: str, limit: RateLimit) -> bool:
        times = self._history.setdefault(name, deque())
        now = self._clock()
        while times and now - times[0] >= limit.per_s:
            times.popleft()
        return len(times) < limit.calls
