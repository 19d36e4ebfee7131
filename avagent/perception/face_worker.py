"""Face detection and tracking in a process of its own: ``python -m avagent.perception.face_worker``.

Detection is C++ that lets go of the GIL, but tracking and the glue around it are Python: on a
thread they made the event loop wait for the GIL often enough to add milliseconds to the audio
path's worst latencies. In a separate process the audio path does not notice faces at all.

The worker reads one JSON line of ``FaceSettings``, answers ``{"ok": true}`` (or ``{"error": ...}``),
then serves frames until its input closes: a JSON line ``{"shape": [h, w, 3]}`` followed by the
raw BGR bytes; the answer is one JSON line, the list of face records.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from avagent.agent.child_process import ChildProcess, answer
from avagent.agent.errors import InputError


class FaceWorkerError(RuntimeError):
    """The face worker process failed or is gone."""


@dataclass(frozen=True, slots=True)
class FaceSettings:
    model: str | None = None
    min_face_px: int = 40
    detect_width: int = 640
    score_threshold: float = 0.7
    max_missed: int = 5
    hfov_deg: float = 60.0
    yaw_deg: float = 0.0
    threads: int = 1


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    import cv2

    from avagent.perception.face_tracks import FaceTracker
    from avagent.perception.faces import CameraGeometry, analyse_faces, build_detector

    try:
        settings = FaceSettings(**json.loads(stdin.readline() or b"{}"))
        cv2.setNumThreads(settings.threads)
        detector = build_detector(
            settings.model,
            min_face_px=settings.min_face_px,
            detect_width=settings.detect_width,
            score_threshold=settings.score_threshold,
        )
    except Exception as exc:
        answer(stdout, {"error": str(exc)})
        return 1
    tracker = FaceTracker(max_missed=settings.max_missed)
    geometry = CameraGeometry(hfov_deg=settings.hfov_deg, yaw_deg=settings.yaw_deg)
    answer(stdout, {"ok": True})
    while True:
        header = stdin.readline()
        if not header:
            return 0
        shape = tuple(json.loads(header)["shape"])
        size = math.prod(shape)
        data = stdin.read(size)
        if len(data) < size:
            return 0
        image = np.frombuffer(data, dtype=np.uint8).reshape(shape)
        try:
            answer(stdout, analyse_faces(image, detector, tracker, geometry))
        except Exception as exc:
            answer(stdout, {"error": f"{type(exc).__name__}: {exc}"})


class FaceProcess:
    """The parent's handle on a face worker process; ``process`` blocks (call it off the loop)."""

    def __init__(self, settings: FaceSettings) -> None:
        self._child = ChildProcess(
            "avagent.perception.face_worker", dataclasses.asdict(settings), FaceWorkerError
        )
        try:
            self._child.ready()
        except FaceWorkerError as exc:
            raise InputError(f"face detection cannot start: {exc}") from None

    def process(self, image: np.ndarray) -> list[dict[str, Any]]:
        frame = np.ascontiguousarray(image, dtype=np.uint8)
        header = json.dumps({"shape": list(frame.shape)}).encode() + b"\n"
        return list(self._child.request(header, frame.data))

    def close(self) -> None:
        """Stop the worker; safe to call twice."""
        self._child.close()


if __name__ == "__main__":
    raise SystemExit(serve(sys.stdin.buffer, sys.stdout.buffer))
