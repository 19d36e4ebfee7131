"""Pieces of audio fed to an agent one after another, each once the agent has done with the last.

A conversation test's user turns: each piece is fed in lockstep (as a WAV file is, block by block,
each once the agent has settled), then silence until the agent is idle again (it has heard the
turn out, answered and finished speaking; bounded by ``max_wait_s``), and only then the next. So
the user never talks over the agent by accident, and the same turns give the same events on any
machine. ``starts`` and ``ends`` say where each piece lies in media time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.messages import AudioFrame


class TurnAudioSource:
    """Publishes ``pieces`` (mono float32 at ``sample_rate``) as ``AudioFrame``s, turn by turn."""

    name = "turn_source"
    consumes: tuple[type, ...] = ()
    produces = (AudioFrame,)

    def __init__(
        self,
        pieces: Sequence[np.ndarray],
        bus: Bus,
        clock: MediaClock,
        *,
        sample_rate: int,
        block_ms: float = 32.0,
        max_wait_s: float = 30.0,
    ) -> None:
        self._pieces = [np.asarray(p, dtype=np.float32).reshape(-1, 1) for p in pieces]
        self._bus = bus
        self._clock = clock
        self.sample_rate = sample_rate
        self._block = max(1, round(sample_rate * block_ms / 1000.0))
        self.max_wait_s = max_wait_s
        self.starts: list[float] = []
        """Media time at which each piece began."""
        self.ends: list[float] = []
        """Media time at which each piece's last sample was fed."""
        self.timed_out: list[int] = []
        """Pieces after which the agent was still busy at ``max_wait_s`` (indices)."""

    async def run(self) -> None:
        t = 0.0
        silence = np.zeros((self._block, 1), dtype=np.float32)
        for index, piece in enumerate(self._pieces):
            self.starts.append(t)
            for first in range(0, piece.shape[0], self._block):
                t = await self._send(piece[first : first + self._block], t)
            self.ends.append(t)
            waited_until = t + self.max_wait_s
            while not self._bus.activity.idle():
                if t >= waited_until:
                    self.timed_out.append(index)
                    break
                t = await self._send(silence, t)

    async def _send(self, block: np.ndarray, t: float) -> float:
        t_end = t + int(block.shape[0]) / self.sample_rate
        self._clock.advance(t_end)
        await self._bus.publish(AudioFrame(block, self.sample_rate, t, time.monotonic()))
        await self._bus.activity.settled()
        self._clock.render()
        return t_end
