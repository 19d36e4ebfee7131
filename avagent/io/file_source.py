"""A WAV file as the agent's microphone: paced in real time, or as fast as the agent keeps up.

As fast as possible, the source hands over one block and waits until the agent has settled
(every stage idle) before the next: the agent sees the file exactly as it would live with
instantly fast processing, so results and event times do not depend on the machine's speed.
After the file ends, silence follows until the agent is idle (bounded by ``max_tail_s``), so a
command at the very end of a file still gets answered. Both rules live in ``core/activity.py``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.messages import AudioFrame
from avagent.io.wav import WavInfo, inspect_wav


class FileAudioSource:
    """Streams a checked WAV file (any rate, 1..N channels) onto the bus as ``AudioFrame``s."""

    name = "file_source"
    consumes: tuple[type, ...] = ()
    produces = (AudioFrame,)

    def __init__(
        self,
        path: str | Path,
        bus: Bus,
        clock: MediaClock,
        *,
        realtime: bool = False,
        block_ms: float = 32.0,
        max_tail_s: float = 30.0,
        info: WavInfo | None = None,
    ) -> None:
        self.info = info if info is not None else inspect_wav(path)
        self._bus = bus
        self._clock = clock
        self.realtime = realtime
        self._block = max(1, round(self.info.sample_rate * block_ms / 1000.0))
        self.max_tail_s = max_tail_s
        self.frames_sent = 0

    async def run(self) -> None:
        rate = self.info.sample_rate
        loop = asyncio.get_running_loop()
        start_loop = loop.time()
        start_mono = time.monotonic()
        t = 0.0
        with sf.SoundFile(str(self.info.path)) as f:
            for block in f.blocks(blocksize=self._block, dtype="float32", always_2d=True):
                t = await self._send(block, t, rate, start_loop, start_mono)
        silence = np.zeros((self._block, self.info.channels), dtype=np.float32)
        tail_end = t + self.max_tail_s
        while t < tail_end:
            # Paced: wait for the next block first, so the agent has handled the last one before we
            # ask whether it is idle.
            await self._pace(start_loop + t + self._block / rate)
            if self._bus.activity.idle():
                break
            t = await self._send(silence, t, rate, start_loop, start_mono)

    async def _pace(self, deadline: float) -> float:
        """In real time, sleep until ``deadline`` (loop time); returns how late we already were."""
        if not self.realtime:
            return 0.0
        delay = deadline - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
            return 0.0
        return -delay

    async def _send(
        self, block: np.ndarray, t: float, rate: int, start_loop: float, start_mono: float
    ) -> float:
        t_end = t + int(block.shape[0]) / rate
        if self.realtime:
            # A block exists once its last sample has arrived.
            await self._pace(start_loop + t_end)
            capture = start_mono + t
        else:
            capture = time.monotonic()
        self._clock.advance(t_end)
        await self._bus.publish(AudioFrame(block, rate, t, capture))
        self.frames_sent += 1
        if not self.realtime:
            await self._bus.activity.settled()
        self._clock.render()
        return t_end
