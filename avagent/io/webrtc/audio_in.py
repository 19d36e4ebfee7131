"""The caller's microphone as the agent's audio source.

aiortc decodes the caller's Opus into 48 kHz ``av.AudioFrame``s (20 ms, interleaved int16). Each
becomes an ``AudioFrame`` on the agent's bus; the listener resamples to 16 kHz itself. Media time
follows the frames' RTP timestamps from the first frame, so lost packets leave a gap rather than
squeezing the timeline.

A call has no end of file: the source ends when the track ends (the caller hung up) or when no
audio has arrived for ``stall_timeout_s`` (the caller vanished: browsers send packets all the
time, silence included). Either way ``run`` returns and the agent shuts down.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.messages import AudioFrame

EndReason = Literal["ended", "stalled", "never_started"]


def to_audio_frame(frame: av.AudioFrame, t: float, t_capture: float) -> AudioFrame:
    """An ``av.AudioFrame`` (int16 or float, packed or planar) as an ``AudioFrame`` of shape (n, ch)."""
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    samples = np.ascontiguousarray(data.T) if frame.format.is_planar else data.reshape(-1, channels)
    if samples.dtype not in (np.int16, np.float32):
        samples = samples.astype(np.float32)
    return AudioFrame(samples, frame.sample_rate, t, t_capture)


class CallAudioSource:
    """Feeds a call's incoming audio track to an agent until the track ends or stalls."""

    name = "call_audio"
    consumes: tuple[type, ...] = ()
    produces = (AudioFrame,)

    def __init__(
        self,
        track: MediaStreamTrack,
        bus: Bus,
        clock: MediaClock,
        *,
        stall_timeout_s: float = 2.0,
        first_frame_timeout_s: float = 15.0,
    ) -> None:
        self._track = track
        self._bus = bus
        self._clock = clock
        self.stall_timeout_s = stall_timeout_s
        self.first_frame_timeout_s = first_frame_timeout_s
        self.frames = 0
        self.end_reason: EndReason | None = None
        self.lag_s = 0.0
        """How far the last frame was handed over behind real time (grows when the agent lags)."""
        self.max_lag_s = 0.0
        self._t_next = 0.0
        self._first_pts: int | None = None
        self._start_monotonic = 0.0

    async def run(self) -> None:
        while True:
            timeout = self.stall_timeout_s if self.frames else self.first_frame_timeout_s
            try:
                async with asyncio.timeout(timeout):
                    received = await self._track.recv()
            except MediaStreamError:
                self.end_reason = "ended"
                return
            except TimeoutError:
                self.end_reason = "stalled" if self.frames else "never_started"
                return
            if isinstance(received, av.AudioFrame):
                await self._handle(received)

    def _media_time(self, frame: av.AudioFrame) -> float:
        if frame.pts is None:
            return self._t_next
        if self._first_pts is None:
            self._first_pts = frame.pts
        t = (frame.pts - self._first_pts) / frame.sample_rate
        # A timestamp that goes back (a new stream source) continues the timeline instead.
        return t if t >= self._t_next - 1e-3 else self._t_next

    async def _handle(self, received: av.AudioFrame) -> None:
        now = time.monotonic()
        if self.frames == 0:
            self._start_monotonic = now - received.samples / received.sample_rate
        t = self._media_time(received)
        # The first sample was captured (at the latest) one frame before the frame arrived.
        frame = to_audio_frame(received, t, now - received.samples / received.sample_rate)
        self._t_next = frame.t_end
        self.frames += 1
        self.lag_s = (now - self._start_monotonic) - frame.t_end
        self.max_lag_s = max(self.max_lag_s, self.lag_s)
        self._clock.advance(frame.t_end, now)
        await self._bus.publish(frame)
        self._clock.render()
