"""A source with no input: media time runs with the wall clock until the agent stops.

The policy and actuators parts of a split agent hear and see nothing themselves (their input comes
over the robot bus), but their rules still count media time (holds, leases, rate limits): this
source keeps it moving.
"""

from __future__ import annotations

import asyncio
import time

from avagent.core.clock import MediaClock

TICK_S = 0.05


class WallClockSource:
    """Advances ``clock`` with the wall clock, forever (until cancelled)."""

    name = "wall_clock"
    consumes: tuple[type, ...] = ()
    produces: tuple[type, ...] = ()

    def __init__(self, clock: MediaClock, tick_s: float = TICK_S) -> None:
        self.clock = clock
        self.tick_s = tick_s

    async def run(self) -> None:
        start = time.monotonic()
        while True:
            now = time.monotonic()
            self.clock.advance(now - start, now)
            self.clock.render()
            await asyncio.sleep(self.tick_s)
