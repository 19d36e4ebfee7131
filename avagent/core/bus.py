"""The bus: typed publish/subscribe over bounded streams.

A stage subscribes to the message types it needs (``AudioFrame``, ``VideoFrame``, event classes;
subclasses match) and gets its own ``Stream``. Publishing fans a message out to every matching
stream according to that stream's overflow policy; control events go into each stream's priority
lane. Drops are reported as ``overflow`` events, at most once per second per stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from avagent.core.activity import Activity
from avagent.core.events import Event, Overflow
from avagent.core.streams import OverflowPolicy, Stream

T = TypeVar("T")

_REPORT_INTERVAL_S = 1.0


def _start_of_media() -> float:
    return 0.0


class Bus:
    """Routes frames and events from publishers to subscribers' streams."""

    def __init__(self, activity: Activity | None = None) -> None:
        self.activity = activity if activity is not None else Activity()
        self._subscriptions: list[tuple[tuple[type, ...], Stream[Any]]] = []
        self._routes: dict[type, list[Stream[Any]]] = {}
        self._unreported: dict[str, int] = {}
        self._last_report: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.media_time: Callable[[], float] = _start_of_media
        """Where the input has got to, in media seconds; the agent points this at its clock."""

    def subscribe(
        self,
        *types: type[T],
        name: str,
        maxsize: int = 64,
        policy: OverflowPolicy = OverflowPolicy.BLOCK,
    ) -> Stream[T]:
        """A new stream that receives every published message that is an instance of ``types``;
        ``name`` starts with the subscribing stage's name (``listener.audio``)."""
        if not types:
            raise ValueError("subscribe needs at least one message type")
        stream: Stream[T] = Stream(name, maxsize, policy, activity=self.activity, on_drop=self.report_dropped)
        self._subscriptions.append((types, stream))
        self._routes.clear()
        return stream

    def unsubscribe(self, stage: str) -> int:
        """Remove and close every stream of the stage named ``stage`` (``stage`` or ``stage.*``):
        for a stage built but not run (a part of the agent that runs on another machine), so that
        nothing queues up for it. Returns how many streams were removed."""
        kept: list[tuple[tuple[type, ...], Stream[Any]]] = []
        gone: list[tuple[tuple[type, ...], Stream[Any]]] = []
        for types, stream in self._subscriptions:
            owner = stream.name.split(".", 1)[0]
            (gone if owner == stage else kept).append((types, stream))
        for _types, stream in gone:
            stream.close()
        self._subscriptions = kept
        self._routes.clear()
        return len(gone)

    def close(self) -> None:
        """Close every stream so that consumers leave their loops."""
        for _types, stream in self._subscriptions:
            stream.close()

    def _route(self, kind: type) -> list[Stream[Any]]:
        streams = self._routes.get(kind)
        if streams is None:
            streams = [s for types, s in self._subscriptions if issubclass(kind, types)]
            self._routes[kind] = streams
        return streams

    async def publish(self, item: object) -> None:
        """Deliver ``item``; waits only where a ``BLOCK`` subscriber is full."""
        control = isinstance(item, Event) and item.control
        for stream in self._route(type(item)):
            if control:
                stream.put_control(item)
            elif stream.policy is OverflowPolicy.BLOCK:
                if stream.full():
                    await stream.put(item)
                else:
                    stream.put_nowait(item)
            else:
                stream.put_nowait(item)

    def publish_nowait(self, item: object) -> None:
        """Deliver ``item`` without waiting: a full ``BLOCK`` subscriber counts it as dropped."""
        control = isinstance(item, Event) and item.control
        for stream in self._route(type(item)):
            if control:
                stream.put_control(item)
            else:
                stream.put_nowait(item)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the bus lives on (``publish_from_any_thread`` needs it)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def publish_from_any_thread(self, item: object) -> None:
        """Publish ``item`` from the loop's thread or from any other (a sound card callback)."""
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self.publish_nowait, item)
        else:
            self.publish_nowait(item)

    def report_dropped(self, stream: Stream[Any], count: int) -> None:
        """Count ``count`` items dropped by ``stream``; reported as ``overflow`` events."""
        self._unreported[stream.name] = self._unreported.get(stream.name, 0) + count
        now = time.monotonic()
        if now - self._last_report.get(stream.name, -_REPORT_INTERVAL_S) < _REPORT_INTERVAL_S:
            return
        self._last_report[stream.name] = now
        dropped = self._unreported.pop(stream.name)
        report = Overflow(t=self.media_time(), stream=stream.name, dropped=dropped)
        # Reports never go back into the stream that overflowed, so they cannot feed themselves.
        for target in self._route(Overflow):
            if target is not stream:
                target.put_nowait(report)

    def subscriptions(self) -> list[tuple[str, tuple[type, ...]]]:
        """Each stream's name and the message types it receives, in the order they subscribed."""
        return [(stream.name, types) for types, stream in self._subscriptions]

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters of every stream, by stream name."""
        return {
            stream.name: {
                "put": stream.stats.put,
                "dropped": stream.stats.dropped,
                "superseded": stream.stats.superseded,
                "high_water": stream.stats.high_water,
                "queued": len(stream),
            }
            for _types, stream in self._subscriptions
        }
