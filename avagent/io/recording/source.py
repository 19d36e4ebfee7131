"""A recording's inputs fed to an agent again, in lockstep, as a WAV file is fed.

``RecordedAudioSource`` publishes the recorded input blocks as they were (same sizes, same sample
format), each once the agent has settled, then silence until the agent is idle (core/activity.py):
a session recorded in lockstep replays to the same events. ``RecordedVideoSource`` publishes each
recorded frame once the input audio has reached its time, as a video file is played, so every
sound is paired with the picture of its moment.

The file is read on a worker thread, a batch of messages at a time (JPEGs are decoded there too),
and only a little ahead: up to the next audio block, so that the frames of the block being fed
are known before the clock passes them. Reading stops where the scan found the recording to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.messages import AudioFrame, VideoFrame
from avagent.io.recording.contents import RecordingContents
from avagent.io.recording.format import (
    AUDIO_IN,
    VIDEO,
    AudioBlock,
    RecordingError,
    decode_audio,
    decode_jpeg,
    decode_video,
)
from avagent.io.recording.reader import RecordingReader

_BATCH = 32
"""Messages read per trip to the worker thread."""

_Item = AudioBlock | tuple[float, np.ndarray]


class RecordedVideoSource:
    """The recorded frames, each published once media time reaches it."""

    name = "recorded_video"
    consumes: tuple[type, ...] = ()
    produces = (VideoFrame,)

    def __init__(self, bus: Bus, clock: MediaClock) -> None:
        self._bus = bus
        self._clock = clock
        self._frames: deque[tuple[float, np.ndarray]] = deque()
        self._reached = 0.0
        self._wake = asyncio.Event()
        self._pending = False
        self._finished = False
        self.frames_published = 0
        clock.add_listener(self._on_render)

    def add(self, t: float, image: np.ndarray) -> None:
        """A frame read from the recording, to be shown at media time ``t``."""
        self._frames.append((t, image))

    def finish(self) -> None:
        """No more frames will come: ``run`` returns once the ones due are out."""
        self._finished = True
        self._wake.set()

    def _on_render(self, _t_from: float, t_to: float) -> None:
        self._reached = t_to
        if not self._pending and self._frames and self._frames[0][0] <= t_to:
            # Work in flight from now: a file fed in lockstep waits for these frames.
            self._pending = True
            self._bus.activity.begin()
            self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    while self._frames and self._frames[0][0] <= self._reached:
                        t, image = self._frames.popleft()
                        capture = self._clock.monotonic_of(t)
                        await self._bus.publish(VideoFrame(image=image, t=t, t_capture=capture))
                        self.frames_published += 1
                finally:
                    self._release()
                if self._finished:
                    return
        finally:
            self._release()

    def _release(self) -> None:
        if self._pending:
            self._pending = False
            self._bus.activity.end()


class RecordedAudioSource:
    """The recorded input audio, block by block, in lockstep; the frames go to ``video``."""

    name = "recorded_input"
    consumes: tuple[type, ...] = ()
    produces = (AudioFrame,)

    def __init__(
        self,
        contents: RecordingContents,
        bus: Bus,
        clock: MediaClock,
        *,
        video: RecordedVideoSource | None = None,
        max_tail_s: float = 30.0,
    ) -> None:
        if contents.audio is None:
            raise RecordingError(f"{contents.path}: holds no input audio to replay")
        self.contents = contents
        self._bus = bus
        self._clock = clock
        self._video = video
        self.max_tail_s = max_tail_s
        self.blocks_sent = 0
        self.problem: str | None = None
        """Why the second reading stopped early (the file changed since it was scanned)."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorded_input")
        items = self._items()
        pending: deque[_Item] = deque()
        exhausted = False
        t = 0.0
        last: AudioBlock | None = None
        current: AudioBlock | None = None
        try:
            while True:
                # Read on to the next audio block, handing over the frames in between.
                upcoming: AudioBlock | None = None
                while upcoming is None:
                    if not pending and not exhausted:
                        batch = await loop.run_in_executor(pool, _take, items, _BATCH)
                        exhausted = not batch
                        pending.extend(batch)
                    if not pending:
                        break
                    item = pending.popleft()
                    if isinstance(item, AudioBlock):
                        upcoming = item
                    elif self._video is not None:
                        self._video.add(*item)
                if current is not None:
                    t = await self._send(current.samples, t, current.sample_rate)
                    last = current
                if upcoming is None:
                    break
                current = upcoming
            if last is not None:
                await self._tail(last, t)
        finally:
            with contextlib.suppress(ValueError):  # still running on the worker, if cancelled there
                items.close()
            pool.shutdown(wait=False)
            if self._video is not None:
                self._video.finish()

    async def _tail(self, last: AudioBlock, t: float) -> None:
        """Silence after the recording, until the agent has answered everything (as for a file)."""
        silence = np.zeros_like(last.samples)
        tail_end = t + self.max_tail_s
        while t < tail_end and not self._bus.activity.idle():
            t = await self._send(silence, t, last.sample_rate)

    async def _send(self, samples: np.ndarray, t: float, rate: int) -> float:
        t_end = t + int(samples.shape[0]) / rate
        self._clock.advance(t_end)
        await self._bus.publish(AudioFrame(samples, rate, t, time.monotonic()))
        self.blocks_sent += 1
        await self._bus.activity.settled()
        self._clock.render()
        return t_end

    def _items(self) -> Generator[_Item, None, None]:
        """The recording's audio blocks and decoded frames, in file order, up to what the scan
        found readable (runs on the worker thread)."""
        assert self.contents.audio is not None
        blocks = self.contents.audio.blocks
        audio_seen = 0
        reader = RecordingReader(self.contents.path)
        for message in reader.messages():
            if message.topic == AUDIO_IN:
                if audio_seen >= blocks:
                    return
                try:
                    yield decode_audio(message.data)
                except RecordingError as exc:
                    self.problem = str(exc)
                    return
                audio_seen += 1
            elif message.topic == VIDEO and self._video is not None:
                try:
                    t, jpeg = decode_video(message.data)
                    yield t, decode_jpeg(jpeg)
                except RecordingError:
                    continue  # counted by the scan; a frame left out


def _take(items: Iterator[_Item], n: int) -> list[_Item]:
    batch: list[_Item] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            break
    return batch
