"""Activity: the one home of the lockstep rule.

A file fed "as fast as possible" is fed in lockstep: the source hands over one block, then waits
until ``settled()`` (no item queued or in hand on any stream, no tracked job running), and only
then hands over the next. The agent sees the file exactly as it would in real time with instant
processing, so results and event times are the same on any machine. When the file has ended, its
silent tail runs until ``idle()``: nothing in flight, and no stage holding on to work that later
input may finish (a turn being spoken, an answer being worked out or played).

Every stream counts its items here; stages add what streams cannot see: jobs they start
(``track``), waits for the user's next words (``waiting_for_input``), and their own pending work
(``hold_while``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class Activity:
    """How much work is in flight: queued items, items being handled, tracked jobs and holders."""

    def __init__(self) -> None:
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._holders: list[Callable[[], bool]] = []

    @property
    def pending(self) -> int:
        return self._pending

    def begin(self, count: int = 1) -> None:
        self._pending += count
        self._idle.clear()

    def end(self, count: int = 1) -> None:
        self._pending -= count
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    @contextlib.contextmanager
    def waiting_for_input(self) -> Iterator[None]:
        """Around a wait for what only later input can bring (the user's next words): the work in
        hand does not count meanwhile, so a file fed as fast as the agent settles goes on."""
        self.end()
        try:
            yield
        finally:
            self.begin()

    def track(self, task: asyncio.Future[Any]) -> None:
        """Count ``task`` as work in flight until it finishes, however it finishes."""
        self.begin()
        task.add_done_callback(lambda _task: self.end())

    async def settled(self) -> None:
        """Wait until no work is in flight, including work that finishing work starts."""
        while True:
            await self._idle.wait()
            # Let callbacks scheduled by the last finished item run: they may start new work.
            await asyncio.sleep(0)
            if self._pending == 0:
                return

    def hold_while(self, busy: Callable[[], bool]) -> None:
        """Count ``busy()`` as work that is not done: a stage in the middle of something that later
        input finishes (the user's turn, an answer being played)."""
        self._holders.append(busy)

    def held(self) -> bool:
        """Some stage holds on to unfinished work (whatever is queued)."""
        return any(busy() for busy in self._holders)

    def idle(self) -> bool:
        """Nothing in flight and nothing held: the agent has done all the input asked of it."""
        return self._pending == 0 and not self.held()
