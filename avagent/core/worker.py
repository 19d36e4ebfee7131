"""A cancellable worker: handles the items of its own queue one at a time, in order.

Interruption is "cancel the consumer task and start a new one": ``cancel()`` drops everything
queued and whatever is in hand, at once, and the worker is ready for the next item.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from avagent.core.activity import Activity
from avagent.core.streams import Stream

T = TypeVar("T")


class Worker(Generic[T]):
    """Runs ``handle(item)`` for each queued item; one task owns the handling."""

    def __init__(
        self, name: str, handle: Callable[[T], Awaitable[None]], activity: Activity, maxsize: int = 256
    ) -> None:
        self.name = name
        self._handle = handle
        self._queue: Stream[T] = Stream(name, maxsize=maxsize, activity=activity)
        self._task: asyncio.Task[None] | None = None
        self.handling = False

    @property
    def busy(self) -> bool:
        """An item is queued or being handled."""
        return self.handling or len(self._queue) > 0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def put(self, item: T) -> None:
        await self._queue.put(item)

    async def cancel(self) -> int:
        """Drop the queued items and the one in hand; returns how many were queued."""
        dropped = self._queue.clear()
        await self.stop()
        self.start()
        return dropped

    async def stop(self) -> None:
        """Stop handling; waits for the task to exit. Safe to call twice."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._queue.task_done()
        self.handling = False

    async def _loop(self) -> None:
        async for item in self._queue:
            self.handling = True
            try:
                await self._handle(item)
            finally:
                self.handling = False
