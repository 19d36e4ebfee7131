"""Video in: a camera (device index or stream URL) or a video file, as ``VideoFrame``s on the bus.

``CameraSource`` reads a live capture on its own thread (a read blocks until the camera has a
frame) and hands frames to the loop at the configured rate, stamped with the media clock's time
of capture. ``VideoFileSource`` plays a file in step with the media clock: each frame is
published once the input audio has reached its time, so a recording processed faster than real
time still pairs every sound with the picture of that moment. Decoding runs on a worker thread.
Subscribers read video with ``KEEP_LATEST``: when sight is slower than the camera, old frames go.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.errors import InputError
from avagent.core.messages import VideoFrame


def open_capture(
    source: int | str, *, width: int | None = None, height: int | None = None
) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture``, or an ``InputError`` saying why not."""
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        what = f"camera {source}" if isinstance(source, int) else repr(source)
        raise InputError(f"cannot open {what} for video")
    if width is not None:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height is not None:
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    return capture


class CameraSource:
    """A live camera or stream, sampled down to ``fps`` frames per second."""

    name = "camera"
    consumes: tuple[type, ...] = ()
    produces = (VideoFrame,)

    def __init__(
        self,
        source: int | str,
        bus: Bus,
        clock: MediaClock,
        *,
        fps: float = 15.0,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self.source = source
        self._bus = bus
        self._clock = clock
        self.interval = 1.0 / fps
        self._size = (width, height)
        self._stopping = threading.Event()
        self.frames_published = 0
        self.read_failures = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        capture = await asyncio.to_thread(
            open_capture, self.source, width=self._size[0], height=self._size[1]
        )
        self._stopping.clear()
        ended = asyncio.Event()
        reader = threading.Thread(
            target=self._read_loop, args=(capture, loop, ended), name="camera", daemon=True
        )
        reader.start()
        try:
            await ended.wait()
        finally:
            self._stopping.set()
            await asyncio.shield(asyncio.to_thread(reader.join, 2.0))
            capture.release()

    def _read_loop(
        self, capture: cv2.VideoCapture, loop: asyncio.AbstractEventLoop, ended: asyncio.Event
    ) -> None:
        try:
            self._read_frames(capture, loop)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the agent is gone
                loop.call_soon_threadsafe(ended.set)

    def _read_frames(self, capture: cv2.VideoCapture, loop: asyncio.AbstractEventLoop) -> None:
        # A file given as a "camera" is paced like one; a device paces itself.
        paced = capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        next_due = time.monotonic()
        while not self._stopping.is_set():
            ok, image = capture.read()
            now = time.monotonic()
            if not ok:
                self.read_failures += 1
                if paced or self.read_failures > 50:
                    return
                time.sleep(0.02)
                continue
            if now < next_due:
                if paced:
                    time.sleep(next_due - now)
                    now = time.monotonic()
                else:
                    continue
            next_due = max(next_due + self.interval, now - self.interval)
            frame = VideoFrame(image=np.ascontiguousarray(image), t=self._clock.now(), t_capture=now)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._bus.publish_nowait, frame)
            self.frames_published += 1


class VideoFileSource:
    """A video file played in step with the media clock (which the audio input drives)."""

    name = "video_file"
    consumes: tuple[type, ...] = ()
    produces = (VideoFrame,)

    def __init__(self, path: str | Path, bus: Bus, clock: MediaClock, *, fps: float = 15.0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such video file")
        capture = open_capture(str(self.path))
        self.file_fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        capture.release()
        self._bus = bus
        self._clock = clock
        self.interval = 1.0 / min(fps, self.file_fps)
        self._reached = 0.0
        self._wake = asyncio.Event()
        self._pending = False
        self._finished = False
        self._next_t = 0.0
        self.frames_published = 0
        clock.add_listener(self._on_render)

    def _on_render(self, _t_from: float, t_to: float) -> None:
        self._reached = t_to
        if not (self._finished or self._pending) and self._next_t <= t_to:
            # Counted as work in flight at once, so a file fed in lockstep waits for this frame.
            self._pending = True
            self._bus.activity.begin()
            self._wake.set()

    async def run(self) -> None:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video_file")
        loop = asyncio.get_running_loop()
        capture = await loop.run_in_executor(pool, open_capture, str(self.path))
        file_t = 0.0
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    while self._next_t <= self._reached:
                        image, file_t = await loop.run_in_executor(
                            pool, self._frame_at, capture, self._next_t, file_t
                        )
                        if image is None:
                            return  # the film is over; the sound may go on
                        t = self._next_t
                        await self._bus.publish(
                            VideoFrame(image=image, t=t, t_capture=self._clock.monotonic_of(t))
                        )
                        self.frames_published += 1
                        self._next_t += self.interval
                finally:
                    if self._pending:
                        self._pending = False
                        self._bus.activity.end()
        finally:
            self._finished = True
            if self._pending:
                self._pending = False
                self._bus.activity.end()
            await asyncio.shield(loop.run_in_executor(pool, capture.release))
            pool.shutdown(wait=False)

    def _frame_at(
        self, capture: cv2.VideoCapture, t: float, file_t: float
    ) -> tuple[np.ndarray | None, float]:
        """The file's frame shown at time ``t``: decode forward to it, skipping frames between."""
        image: np.ndarray | None = None
        step = 1.0 / self.file_fps
        while True:
            ok, decoded = capture.read()
            if not ok:
                return None, file_t
            image, frame_t = decoded, file_t
            file_t += step
            if frame_t + step > t + 1e-6:
                return np.ascontiguousarray(image), file_t
