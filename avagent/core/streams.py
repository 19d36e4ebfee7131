"""Bounded streams between stages, each with an explicit overflow policy and counters.

A ``Stream`` is a single-consumer queue. What happens when it is full is chosen per stream:
``BLOCK`` makes the producer wait (a file is never dropped), ``DROP_OLDEST`` drops and counts (a
live device cannot wait; every drop is reported), ``KEEP_LATEST`` keeps only the newest items
(video: a stale frame is worth nothing). Control items (barge-in, stop) go into a priority lane
and are delivered before any queued data.

Every item put in a stream counts as work in flight in the bus's ``Activity`` (core/activity.py)
until its consumer has finished with it.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from avagent.core.activity import Activity

T = TypeVar("T")


class OverflowPolicy(enum.Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    KEEP_LATEST = "keep_latest"


class StreamClosed(Exception):
    """Raised by ``Stream.get`` once the stream is closed and empty."""


@dataclass(slots=True)
class StreamStats:
    put: int = 0
    dropped: int = 0
    superseded: int = 0
    high_water: int = 0


class Stream(Generic[T]):
    """A bounded single-consumer queue with an overflow policy and a priority lane for control."""

    def __init__(
        self,
        name: str,
        maxsize: int = 64,
        policy: OverflowPolicy = OverflowPolicy.BLOCK,
        *,
        activity: Activity | None = None,
        on_drop: Callable[[Stream[T], int], None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.name = name
        self.maxsize = maxsize
        self.policy = policy
        self.stats = StreamStats()
        self._items: deque[T] = deque()
        self._control: deque[T] = deque()
        self._activity = activity
        self._on_drop = on_drop
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._in_hand = False
        self._closed = False

    def __len__(self) -> int:
        return len(self._items) + len(self._control)

    @property
    def closed(self) -> bool:
        return self._closed

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    # --- producing --------------------------------------------------------------------------

    def put_nowait(self, item: T) -> bool:
        """Add ``item`` without waiting. A full ``BLOCK`` stream counts the item as dropped.

        Returns False when the item (or an older one) had to be dropped.
        """
        if self._closed:
            return False
        kept = True
        if len(self._items) >= self.maxsize:
            if self.policy is OverflowPolicy.KEEP_LATEST:
                self._items.popleft()
                self.stats.superseded += 1
                self._release(1)
            elif self.policy is OverflowPolicy.DROP_OLDEST:
                self._items.popleft()
                self._count_drop()
                kept = False
            else:
                self._count_drop()
                return False
        self._append(item, self._items)
        return kept

    async def put(self, item: T) -> None:
        """Add ``item``; a full ``BLOCK`` stream makes the caller wait for room."""
        if self.policy is not OverflowPolicy.BLOCK:
            self.put_nowait(item)
            return
        while len(self._items) >= self.maxsize and not self._closed:
            waiter = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._putters:
                    self._putters.remove(waiter)
                elif not self.full():
                    self._wake_putter()
                raise
        if not self._closed:
            self._append(item, self._items)

    def put_control(self, item: T) -> None:
        """Deliver ``item`` ahead of all queued data; control items are never dropped."""
        if not self._closed:
            self._append(item, self._control)

    def _append(self, item: T, lane: deque[T]) -> None:
        lane.append(item)
        self.stats.put += 1
        depth = len(self._items) + len(self._control)
        if depth > self.stats.high_water:
            self.stats.high_water = depth
        if self._activity is not None:
            self._activity.begin()
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def _count_drop(self) -> None:
        self.stats.dropped += 1
        if self._activity is not None and self.policy is OverflowPolicy.DROP_OLDEST:
            self._activity.end()
        if self._on_drop is not None:
            self._on_drop(self, 1)

    # --- consuming --------------------------------------------------------------------------

    async def get(self) -> T:
        """The next item, control items first. Getting marks the previous item as handled."""
        self._done_with_item()
        while not self._control and not self._items:
            if self._closed:
                raise StreamClosed(self.name)
            getter = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                await getter
            finally:
                self._getter = None
        item = self._control.popleft() if self._control else self._items.popleft()
        self._in_hand = True
        self._wake_putter()
        return item

    def get_nowait(self) -> T | None:
        """The next item if one is queued, else None (marks the previous item as handled)."""
        self._done_with_item()
        if not self._control and not self._items:
            return None
        item = self._control.popleft() if self._control else self._items.popleft()
        self._in_hand = True
        self._wake_putter()
        return item

    def task_done(self) -> None:
        """Mark the item in hand as handled now, before the next ``get``."""
        self._done_with_item()

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.get()
        except StreamClosed:
            raise StopAsyncIteration from None

    def clear(self) -> int:
        """Drop every queued data item (not control items); returns how many were dropped."""
        count = len(self._items)
        self._items.clear()
        self._release(count)
        while self._putters:
            self._wake_putter()
        return count

    def close(self) -> None:
        """No more items: wake the consumer and any waiting producer. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._done_with_item()
        self._release(len(self._items) + len(self._control))
        self._items.clear()
        self._control.clear()
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _done_with_item(self) -> None:
        if self._in_hand:
            self._in_hand = False
            self._release(1)

    def _release(self, count: int) -> None:
        if count and self._activity is not None:
            self._activity.end(count)

    def _wake_putter(self) -> None:
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
