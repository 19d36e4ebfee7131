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
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

import numpy as np

from avagent.agent.errors import InputError


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

    def answer(payload: Any) -> None:
        stdout.write(json.dumps(payload).encode() + b"\n")
        stdout.flush()

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
        answer({"error": str(exc)})
        return 1
    tracker = FaceTracker(max_missed=settings.max_missed)
    geometry = CameraGeometry(hfov_deg=settings.hfov_deg, yaw_deg=settings.yaw_deg)
    answer({"ok": True})
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
            answer(analyse_faces(image, detector, tracker, geometry))
        except Exception as exc:
            answer({"error": f"{type(exc).__name__}: {exc}"})


class FaceProcess:
    """The parent's handle on a face worker process; ``process`` blocks (call it off the loop)."""

    def __init__(self, settings: FaceSettings) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "avagent.perception.face_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._stdin: IO[bytes] = self._process.stdin  # type: ignore[assignment]
        self._stdout: IO[bytes] = self._process.stdout  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._stdin.write(json.dumps(dataclasses.asdict(settings)).encode() + b"\n")
        self._stdin.flush()
        reply = self._reply()
        if not isinstance(reply, dict) or "error" in reply:
            self.close()
            raise InputError(
                f"face detection cannot start: {reply.get('error') if isinstance(reply, dict) else reply}"
            )

    def _reply(self) -> Any:
        line = self._stdout.readline()
        if not line:
            raise RuntimeError(f"the face worker process ended (exit status {self._process.poll()})")
        return json.loads(line)

    def process(self, image: np.ndarray) -> list[dict[str, Any]]:
        frame = np.ascontiguousarray(image, dtype=np.uint8)
        with self._lock:
            try:
                self._stdin.write(json.dumps({"shape": list(frame.shape)}).encode() + b"\n")
                self._stdin.write(frame.data)
                self._stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise RuntimeError(f"the face worker process is gone: {exc}") from None
            reply = self._reply()
        if isinstance(reply, dict):
            raise RuntimeError(str(reply.get("error")))
        return list(reply)

    def close(self) -> None:
        """Stop the worker; safe to call twice."""
        if self._process.poll() is None:
            self._stdin.close()
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stdout.close()


if __name__ == "__main__":
    raise SystemExit(serve(sys.stdin.buffer, sys.stdout.buffer))
