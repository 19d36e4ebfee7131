"""The agent's events to the caller, over the call's data channel, in the JSON event contract.

The stage reads every event from the bus and sends ``event.to_dict()`` as one JSON text message.
It never holds the agent up: events that come before the channel opens wait in a short backlog,
and while the channel cannot keep up (a caller on a bad line, or gone) new events are dropped
and counted rather than piled up in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import Any

from aiortc import RTCDataChannel

from avagent.core.bus import Bus
from avagent.core.events import Event
from avagent.core.streams import OverflowPolicy


class EventChannel:
    """Sends the agent's events to the data channel the caller opened."""

    name = "call_events"
    consumes = (Event,)
    produces: tuple[type, ...] = ()

    def __init__(self, bus: Bus, *, backlog: int = 256, max_buffered_bytes: int = 1 << 20) -> None:
        self._events = bus.subscribe(
            Event, name="call_events.in", maxsize=backlog, policy=OverflowPolicy.DROP_OLDEST
        )
        self._channel: RTCDataChannel | None = None
        self._waiting: deque[str] = deque(maxlen=backlog)
        self.max_buffered_bytes = max_buffered_bytes
        self.sent = 0
        self.dropped = 0

    def attach(self, channel: RTCDataChannel) -> None:
        """Send to ``channel`` from now on (and what waited for it, once it opens)."""
        self._channel = channel
        if channel.readyState == "open":
            self._flush()
        else:
            channel.on("open", self._flush)

    async def run(self) -> None:
        async for event in self._events:
            self.send(event.to_dict())

    def send(self, message: dict[str, Any]) -> None:
        """Send one JSON message now, or keep it until the channel opens."""
        text = json.dumps(message, ensure_ascii=False)
        channel = self._channel
        if channel is None or channel.readyState == "connecting":
            if len(self._waiting) == self._waiting.maxlen:
                self.dropped += 1
            self._waiting.append(text)
            return
        self._send_now(channel, text)

    async def drained(self, within_s: float = 0.5) -> None:
        """Wait, at most ``within_s``, until what was sent has left for the network (before the
        connection is closed under it)."""
        channel = self._channel
        if channel is None or channel.readyState != "open" or channel.bufferedAmount == 0:
            return
        low = asyncio.Event()
        channel.once("bufferedamountlow", low.set)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within_s):
                    await low.wait()
        finally:
            if not low.is_set():
                channel.remove_listener("bufferedamountlow", low.set)

    def _flush(self) -> None:
        channel = self._channel
        while channel is not None and self._waiting and channel.readyState == "open":
            self._send_now(channel, self._waiting.popleft())

    def _send_now(self, channel: RTCDataChannel, text: str) -> None:
        if channel.readyState != "open" or channel.bufferedAmount > self.max_buffered_bytes:
            self.dropped += 1
            return
        channel.send(text)
        self.sent += 1
