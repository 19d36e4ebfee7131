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
from typing import Any, BinaryIO

import numpy as np

from avagent.core.child_process import ChildProcess, answer
from avagent.core.errors import InputError
from avagent.core.events import FaceRecord
from avagent.perception.face_detection import FaceSettings, analyse_faces, build_detector
from avagent.perception.face_tracks import FaceTracker


class FaceWorkerError(RuntimeError):
    """The face worker process failed or is gone."""


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    import cv2

    try:
        settings = FaceSettings(**json.loads(stdin.readline() or b"{}"))
        cv2.setNumThreads(settings.threads)
        detector = build_detector(settings)
    except Exception as exc:
        answer(stdout, {"error": str(exc)})
        return 1
    tracker = FaceTracker(max_missed=settings.max_missed)
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
            faces = analyse_faces(image, detector, tracker, settings.geometry)
            answer(stdout, [dataclasses.asdict(face) for face in faces])
        except Exception as exc:
            answer(stdout, {"error": f"{type(exc).__name__}: {exc}"})


def _record(data: dict[str, Any]) -> FaceRecord:
    return FaceRecord(**{**data, "box": tuple(data["box"])})


class FaceProcess:
    """The parent's handle on a face worker process. Its calls block: make them off the loop."""

    def __init__(self, settings: FaceSettings) -> None:
        self._child = ChildProcess(sys.modules[__name__], dataclasses.asdict(settings), FaceWorkerError)

    def start(self) -> None:
        """Start the process and wait until it is ready; ``InputError`` says why it cannot."""
        self._child.start()
        try:
            self._child.ready()
        except FaceWorkerError as exc:
            raise InputError(f"face detection cannot start: {exc}") from None

    def process(self, image: np.ndarray) -> list[FaceRecord]:
        frame = np.ascontiguousarray(image, dtype=np.uint8)
        header = json.dumps({"shape": list(frame.shape)}).encode() + b"\n"
        return [_record(face) for face in self._child.request(header, frame.data)]

    def stop(self) -> None:
        """Stop the worker; safe to call twice, or before ``start``."""
        self._child.stop()


if __name__ == "__main__":
    raise SystemExit(serve(sys.stdin.buffer, sys.stdout.buffer))
