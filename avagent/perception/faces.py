"""The face stage: detects and tracks the faces of the newest video frame and publishes ``Faces``.

Detection takes tens of milliseconds a frame, so it never runs on the event loop: as an agent runs
it, detection and tracking run in a process of their own (``face_worker``: the audio path does not
notice them); given a detector object, on the stage's worker thread instead. The stage reads the
newest frame only (its stream keeps the latest), so a camera faster than detection costs nothing
but skipped frames.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from avagent.core.bus import Bus
from avagent.core.events import Error, FaceRecord, Faces
from avagent.core.messages import VideoFrame
from avagent.core.streams import OverflowPolicy
from avagent.perception.face_detection import FaceDetector, FaceSettings, analyse_faces, build_detector
from avagent.perception.face_tracks import FaceTracker
from avagent.perception.face_worker import FaceProcess


class FaceStage:
    """Publishes ``Faces`` for each video frame it gets to see."""

    name = "faces"
    consumes = (VideoFrame,)
    produces = (Faces, Error)

    def __init__(
        self, bus: Bus, settings: FaceSettings | None = None, *, detector: FaceDetector | None = None
    ) -> None:
        """``detector``: detect with it on the stage's thread; without one, the configured detector
        runs in a worker process (checked here, so a bad model file fails now, in one line)."""
        self.settings = s = settings or FaceSettings()
        self._bus = bus
        self.detector = detector
        self.worker: FaceProcess | None = None
        if detector is None:
            build_detector(s)
            self.worker = FaceProcess(s)
        self.geometry = s.geometry
        self.tracker = FaceTracker(max_missed=s.max_missed)
        # Newest frame only: a stale image is worth nothing, and detection must never queue up.
        self._frames = bus.subscribe(
            VideoFrame, name="faces.video", maxsize=1, policy=OverflowPolicy.KEEP_LATEST
        )
        self.frames_seen = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faces")
        try:
            if self.worker is not None:
                await loop.run_in_executor(pool, self.worker.start)
            else:
                await loop.run_in_executor(pool, cv2.setNumThreads, self.settings.threads)
            async for frame in self._frames:
                faces = await loop.run_in_executor(pool, self.process, frame.image)
                self.frames_seen += 1
                await self._bus.publish(Faces(t=frame.t, t_capture=frame.t_capture, faces=tuple(faces)))
        finally:
            # Off the loop, and whatever cancels us: a detection in progress finishes, the worker
            # process ends, and the thread is gone on return.
            await asyncio.shield(asyncio.to_thread(self._shut_down, pool))

    def _shut_down(self, pool: ThreadPoolExecutor) -> None:
        pool.shutdown(wait=True, cancel_futures=True)
        if self.worker is not None:
            self.worker.stop()

    def process(self, image: np.ndarray) -> list[FaceRecord]:
        """Detect, track and describe the faces of one BGR image (blocking: off the loop)."""
        if self.worker is not None:
            return self.worker.process(image)
        assert self.detector is not None
        return analyse_faces(image, self.detector, self.tracker, self.geometry)
