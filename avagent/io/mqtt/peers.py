"""Other nodes this one depends on: are they there?

A peer is *up* once its retained status says ``online`` or a heartbeat of it arrives, and *lost*
when its status says ``offline`` (it stopped, or the broker published its Last Will) or no
heartbeat has come for ``timeout_s`` while this node's own link was up (a frozen process, a
network cut the broker has not noticed yet). A peer never seen is not lost: it has not started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable

Change = Callable[[str, bool, str], Awaitable[None]]
"""``(node, up, why)``: a peer came up, or was lost and why."""


class PeerWatch:
    def __init__(self, peers: Iterable[str], timeout_s: float, on_change: Change) -> None:
        self.timeout_s = timeout_s
        self._on_change = on_change
        self._up: dict[str, bool | None] = dict.fromkeys(peers)
        self._seen: dict[str, float] = {}

    @property
    def peers(self) -> list[str]:
        return list(self._up)

    def up(self, node: str) -> bool | None:
        """True when up, False when lost, None when never seen."""
        return self._up.get(node)

    async def status(self, node: str, payload: bytes) -> None:
        try:
            state = json.loads(payload).get("state")
        except (ValueError, AttributeError, UnicodeDecodeError):
            return
        if state == "online":
            await self.heartbeat(node)
        elif state == "offline":
            await self._set(node, False, "went offline")

    async def heartbeat(self, node: str) -> None:
        if node not in self._up:
            return
        self._seen[node] = time.monotonic()
        await self._set(node, True, "")

    def link_up(self) -> None:
        """This node's link is back: heartbeats missed while it was down do not count."""
        now = time.monotonic()
        for node in self._seen:
            self._seen[node] = now

    async def check(self) -> None:
        """Peers whose heartbeats stopped are lost."""
        now = time.monotonic()
        for node, up in list(self._up.items()):
            if up and now - self._seen.get(node, now) > self.timeout_s:
                await self._set(node, False, f"sent no heartbeat for {self.timeout_s:g} s")

    async def _set(self, node: str, up: bool, why: str) -> None:
        if node not in self._up or self._up[node] is up:
            return
        if not up and self._up[node] is None:
            return  # never seen: not started yet, not lost
        self._up[node] = up
        await self._on_change(node, up, why)
