"""The caller's camera onto the agent's bus, as ``VideoFrame``s for whatever sees.

A call's video runs at up to 30 fps but sight needs far fewer: at most ``max_fps`` frames a second
are converted to BGR and published; the rest are read and dropped (aiortc queues every decoded
frame until someone reads it, so the track is always drained). Publishing never waits: a
consumer subscribes with ``KEEP_LATEST`` and sees the newest frame when it is ready for one.
Frames are stamped with the agent's media time (the audio's) so sight and hearing share a clock.
"""

from __future__ import annotations

import asyncio
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.messages import VideoFrame

_INLINE_PIXELS = 1280 * 720
"""Up to this size a BGR conversion takes about 1 ms or less; larger frames go to a thread."""


class CallVideoSource:
    """Reads one incoming video track until it ends, publishing sampled frames."""

    name = "call_video"
    consumes: tuple[type, ...] = ()
    produces = (VideoFrame,)

    def __init__(self, track: MediaStreamTrack, bus: Bus, clock: MediaClock, *, max_fps: float = 5.0) -> None:
        self._track = track
        self._bus = bus
        self._clock = clock
        self._interval = 1.0 / max_fps if max_fps > 0 else None
        self._next_due = 0.0
        self.received = 0
        self.published = 0

    async def run(self) -> None:
        while True:
            try:
                received = await self._track.recv()
            except MediaStreamError:
                return
            self.received += 1
            if not isinstance(received, av.VideoFrame) or self._interval is None:
                continue
            now = time.monotonic()
            if now < self._next_due:
                continue
            self._next_due = max(self._next_due + self._interval, now)
            image = await self._to_bgr(received)
            self._bus.publish_nowait(VideoFrame(image=image, t=self._clock.now(), t_capture=now))
            self.published += 1

    @staticmethod
    async def _to_bgr(frame: av.VideoFrame) -> np.ndarray:
        if frame.width * frame.height <= _INLINE_PIXELS:
            return frame.to_ndarray(format="bgr24")
        return await asyncio.to_thread(frame.to_ndarray, format="bgr24")
