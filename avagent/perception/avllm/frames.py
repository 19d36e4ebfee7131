"""The frame sampler: camera (or call) frames in, a few JPEGs for a model out.

A model is shown about one frame a second while the user speaks and one every three seconds or so
while nobody does (``FrameSettings``); a frame that looks the same as the last one kept is not
encoded again (the kept one is marked as still current), so a still scene costs one image. Every
frame, sampled or not, updates what the offline description reports: how bright the scene is and
how much it moves. The newest ``Faces`` event is kept for the same report.

Encoding runs on the stage's worker thread; the stage reads the newest frame only, so a camera
faster than encoding costs nothing but skipped frames.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from avagent.core.bus import Bus
from avagent.core.events import Error, Event, Faces, SpeechEnded, SpeechStarted
from avagent.core.media import EncodedImage
from avagent.core.messages import VideoFrame
from avagent.core.streams import OverflowPolicy
from avagent.core.text import describe_error
from avagent.perception.avllm.encoding import difference, encode_jpeg, thumbnail

LIGHT_HISTORY = 256
"""Frames whose brightness and motion are remembered (about 17 s at 15 frames a second)."""


@dataclass(frozen=True, slots=True)
class FrameSettings:
    """How frames are sampled and encoded for a model (``avllm.frames`` in the config)."""

    speaking_fps: float = 1.0
    """Frames a second sampled while the user speaks."""
    idle_fps: float = 0.3
    """Frames a second sampled while nobody speaks."""
    max_side: int = 1024
    """Frames are scaled down to fit inside a square of this many pixels."""
    jpeg_quality: int = 75
    same_frame_diff: float = 1.0
    """A frame whose thumbnail differs from the last kept one by less than this (mean grey
    levels) is the same picture: it is not encoded or sent again."""
    keep_s: float = 60.0
    """Sampled frames older than this are let go."""
    max_kept: int = 32
    """At most this many sampled frames are held."""


@dataclass
class Sampled:
    image: EncodedImage
    thumb: np.ndarray
    seen_until: float
    """Media time of the last frame that looked the same."""


@dataclass(frozen=True, slots=True)
class Light:
    """How the scene looks over a few seconds: ``brightness`` in grey levels (0..255) and
    ``motion``, the mean change between consecutive frames in grey levels."""

    brightness: float
    motion: float
    frames: int


class FrameSampler:
    """Samples and encodes frames for a model, and keeps what sight reports."""

    name = "frame_sampler"
    consumes = (VideoFrame, SpeechStarted, SpeechEnded, Faces)
    produces = (Error,)

    def __init__(self, bus: Bus, settings: FrameSettings | None = None) -> None:
        self.settings = settings or FrameSettings()
        self._bus = bus
        self._video = bus.subscribe(
            VideoFrame, name="frame_sampler.video", maxsize=1, policy=OverflowPolicy.KEEP_LATEST
        )
        self._events = bus.subscribe(
            SpeechStarted, SpeechEnded, Faces, name="frame_sampler.events", maxsize=64
        )
        self._speaking = False
        self._last_sample_t: float | None = None
        self._kept: deque[Sampled] = deque()
        self._previous: np.ndarray | None = None
        self._light: deque[tuple[float, float, float]] = deque(maxlen=LIGHT_HISTORY)
        self.faces: Faces | None = None
        """The newest faces event."""
        self.frames_seen = 0
        self.images_encoded = 0
        self.repeats = 0
        """Sampled frames that looked like the last one kept (not encoded again)."""

    async def run(self) -> None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame_sampler")
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._read_events())
                group.create_task(self._read_frames(pool))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    async def _read_events(self) -> None:
        async for event in self._events:
            self.observe(event)

    def observe(self, event: Event) -> None:
        if isinstance(event, SpeechStarted):
            self._speaking = True
        elif isinstance(event, SpeechEnded):
            self._speaking = False
        elif isinstance(event, Faces):
            self.faces = event

    async def _read_frames(self, pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        async for frame in self._video:
            try:
                sample = self.look(frame)
                if sample is not None:
                    s = self.settings
                    encoded = await loop.run_in_executor(
                        pool,
                        functools.partial(
                            encode_jpeg, frame.image, frame.t, max_side=s.max_side, quality=s.jpeg_quality
                        ),
                    )
                    self.keep(encoded, sample, frame.t)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._bus.publish(
                    Error(t=frame.t, stage=self.name, message=f"cannot sample a frame: {describe_error(exc)}")
                )

    def look(self, frame: VideoFrame) -> np.ndarray | None:
        """Note the frame's light and motion; the frame's thumbnail when it is to be encoded (it
        is due, and it differs from the last frame kept), else None."""
        self.frames_seen += 1
        thumb = thumbnail(frame.image)
        motion = difference(thumb, self._previous) if self._previous is not None else 0.0
        self._previous = thumb
        self._light.append((frame.t, float(thumb.mean()), motion))
        s = self.settings
        interval = 1.0 / (s.speaking_fps if self._speaking else s.idle_fps)
        if self._last_sample_t is not None and frame.t - self._last_sample_t < interval - 1e-6:
            return None
        self._last_sample_t = frame.t
        last = self._kept[-1] if self._kept else None
        if last is not None and difference(thumb, last.thumb) < s.same_frame_diff:
            last.seen_until = frame.t
            self.repeats += 1
            return None
        return thumb

    def keep(self, image: EncodedImage, thumb: np.ndarray, t: float) -> None:
        self.images_encoded += 1
        self._kept.append(Sampled(image, thumb, t))
        s = self.settings
        while self._kept and (len(self._kept) > s.max_kept or self._kept[0].seen_until < t - s.keep_s):
            self._kept.popleft()

    def images_since(self, t: float) -> list[EncodedImage]:
        """The sampled frames still current at or after media time ``t``, oldest first."""
        return [k.image for k in self._kept if k.seen_until >= t]

    def latest(self) -> EncodedImage | None:
        return self._kept[-1].image if self._kept else None

    def light(self, now: float, window_s: float = 3.0) -> Light | None:
        """Brightness and motion over the last ``window_s`` seconds (None: no frame seen)."""
        recent = [(b, m) for t, b, m in self._light if t >= now - window_s]
        if not recent and self._light:
            recent = [self._light[-1][1:]]
        if not recent:
            return None
        return Light(
            brightness=float(np.mean([b for b, _ in recent])),
            motion=float(np.mean([m for _, m in recent])),
            frames=len(recent),
        )
