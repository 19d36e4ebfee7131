"""Face detection: OpenCV's Haar cascade (or YuNet with a model file), and where a face in the
image lies in the microphone array's frame.

This is what both the face stage (on a thread, with a detector of the caller's) and the face
worker process (as an agent runs it) call: detect, track and describe the faces of one frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from avagent.core.angles import wrap360
from avagent.core.errors import InputError
from avagent.core.events import FaceRecord
from avagent.perception.face_tracks import Detection, FaceTrack, FaceTracker


@dataclass(frozen=True, slots=True)
class FaceSettings:
    """How faces are found (``faces:`` in the config) and how the camera sits (``camera:``)."""

    model: str | None = None
    """A YuNet ONNX model file for ``cv2.FaceDetectorYN``; None: OpenCV's Haar frontal-face cascade."""
    min_face_px: int = 40
    detect_width: int = 640
    score_threshold: float = 0.7
    max_missed: int = 5
    threads: int = 1
    hfov_deg: float = 60.0
    yaw_deg: float = 0.0

    @property
    def geometry(self) -> CameraGeometry:
        return CameraGeometry(hfov_deg=self.hfov_deg, yaw_deg=self.yaw_deg)


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray, gray: np.ndarray) -> list[Detection]:
        """The faces in a BGR image (and its grey version), boxes in the image's pixels."""
        ...


def _scale_for(width: int, detect_width: int) -> float:
    return min(1.0, detect_width / max(width, 1))


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (shipped in opencv-python < 5)."""

    def __init__(self, *, min_face_px: int = 40, detect_width: int = 640, min_neighbors: int = 4) -> None:
        data = getattr(cv2, "data", None)
        if data is None or not hasattr(cv2, "CascadeClassifier"):
            raise InputError(
                "this OpenCV has no Haar cascades (they were dropped in OpenCV 5): use opencv < 5"
            )
        path = Path(data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise InputError(f"cannot load the face cascade {path}")
        self.min_face_px = min_face_px
        self.detect_width = detect_width
        self.min_neighbors = min_neighbors

    def detect(self, image: np.ndarray, gray: np.ndarray) -> list[Detection]:
        scale = _scale_for(gray.shape[1], self.detect_width)
        small = (
            gray if scale >= 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        small = cv2.equalizeHist(small)
        side = max(8, round(self.min_face_px * scale))
        boxes, neighbours = self._cascade.detectMultiScale2(
            small, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        found = []
        for box, count in zip(boxes, neighbours, strict=True):
            x, y, w, h = (round(float(v) / scale) for v in box)
            found.append(Detection((x, y, w, h), min(1.0, float(count) / 20.0)))
        return found


class YuNetFaceDetector:
    """OpenCV's YuNet face detector (``cv2.FaceDetectorYN``) from an ONNX model file."""

    def __init__(self, model: str | Path, *, score_threshold: float = 0.7, detect_width: int = 640) -> None:
        path = Path(model)
        if not path.is_file():
            raise InputError(f"{path}: no such YuNet model file")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, 0.3, 50)
        except cv2.error as exc:
            raise InputError(
                f"{path}: cannot load as a YuNet model: {str(exc).strip().splitlines()[-1]}"
            ) from None
        self.detect_width = detect_width
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray, gray: np.ndarray) -> list[Detection]:
        scale = _scale_for(image.shape[1], self.detect_width)
        small = (
            image
            if scale >= 1.0
            else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        )
        size = (int(small.shape[1]), int(small.shape[0]))
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _ok, faces = self._net.detect(small)
        found = []
        for row in faces if faces is not None else []:
            x, y, w, h = (round(float(v) / scale) for v in row[:4])
            found.append(Detection((x, y, w, h), float(row[-1])))
        return found


@dataclass(frozen=True, slots=True)
class CameraGeometry:
    """How a camera sits relative to the microphone array."""

    hfov_deg: float = 60.0
    yaw_deg: float = 0.0
    """Azimuth of the camera's axis in the array's frame."""

    def camera_angle(self, x_px: float, width_px: int) -> float:
        """Signed angle of image column ``x_px`` from the camera's axis (positive to the left)."""
        focal = (width_px / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)
        return -math.degrees(math.atan((x_px - width_px / 2.0) / focal))

    def bearing(self, x_px: float, width_px: int) -> float:
        """Azimuth of image column ``x_px`` in the array's frame, in [0, 360)."""
        return wrap360(self.yaw_deg + self.camera_angle(x_px, width_px))


def face_record(track: FaceTrack, width_px: int, geometry: CameraGeometry) -> FaceRecord:
    """A face as the ``faces`` event has it."""
    x, y, w, h = track.box
    centre = x + w / 2.0
    return FaceRecord(
        id=track.id,
        box=(int(x), int(y), int(w), int(h)),
        bearing_deg=round(geometry.bearing(centre, width_px), 2),
        camera_deg=round(geometry.camera_angle(centre, width_px), 2),
        score=round(track.score, 3),
        mouth_motion=round(track.mouth_motion, 5),
        visible=track.missed == 0,
    )


def analyse_faces(
    image: np.ndarray, detector: FaceDetector, tracker: FaceTracker, geometry: CameraGeometry
) -> list[FaceRecord]:
    """Detect, track and describe the faces of one BGR image."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    tracks = tracker.update(detector.detect(image, gray), gray)
    return [face_record(t, int(image.shape[1]), geometry) for t in tracks]


def build_detector(settings: FaceSettings) -> FaceDetector:
    """YuNet when a model file is given, else the Haar cascade; ``InputError`` when it cannot load."""
    if settings.model:
        return YuNetFaceDetector(
            settings.model, score_threshold=settings.score_threshold, detect_width=settings.detect_width
        )
    return HaarFaceDetector(min_face_px=settings.min_face_px, detect_width=settings.detect_width)
