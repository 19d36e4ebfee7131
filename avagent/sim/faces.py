"""Drawn faces with known truth: shaded ovals with dark eye sockets, brows and a mouth that can open,
and videos of them.

OpenCV's frontal-face Haar cascade finds these as it finds photographed faces (it looks for the
same light and dark bands), so the demo and the tests know exactly where each face is and when its
mouth moves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480


def blank(width: int = WIDTH, height: int = HEIGHT, shade: int = 120) -> np.ndarray:
    """A plain grey-green background (BGR)."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = (shade, shade + 10, shade)
    return image


def draw_face(image: np.ndarray, cx: int, cy: int, size: int, mouth_open: float = 0.0) -> None:
    """Draw a face ``size`` pixels wide centred at ``(cx, cy)``; ``mouth_open`` in [0, 1]."""
    height = int(size * 1.25)
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((xs - cx) / (size / 2)) ** 2 + ((ys - cy) / (height / 2)) ** 2
    inside = r < 1.0
    skin = np.clip(205.0 - 60.0 * r**2, 0, 255)
    for channel, k in enumerate((0.80, 0.90, 1.0)):
        image[..., channel] = np.where(inside, (skin * k).astype(np.uint8), image[..., channel])
    eye_y = cy - int(height * 0.1)
    eye_dx = int(size * 0.2)
    for side in (-1, 1):
        cv2.ellipse(
            image,
            (cx + side * eye_dx, eye_y),
            (int(size * 0.14), int(size * 0.08)),
            0,
            0,
            360,
            (50, 50, 60),
            -1,
        )
        cv2.ellipse(
            image,
            (cx + side * eye_dx, eye_y - int(size * 0.13)),
            (int(size * 0.15), int(size * 0.035)),
            0,
            0,
            360,
            (40, 40, 50),
            -1,
        )
    cv2.ellipse(
        image,
        (cx, cy + int(height * 0.1)),
        (int(size * 0.08), int(size * 0.04)),
        0,
        0,
        360,
        (110, 120, 140),
        -1,
    )
    mouth_h = max(2, int(size * (0.035 + 0.05 * mouth_open)))
    cv2.ellipse(
        image, (cx, cy + int(height * 0.26)), (int(size * 0.2), mouth_h), 0, 0, 360, (90, 90, 150), -1
    )


def column_for(camera_deg: float, width: int = WIDTH, hfov_deg: float = 90.0) -> int:
    """The image column at ``camera_deg`` from the camera's axis (positive: left)."""
    focal = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    return round(width / 2 - focal * math.tan(math.radians(camera_deg)))


def scene(
    faces: list[tuple[int, int, int, float]], width: int = WIDTH, height: int = HEIGHT, blur: bool = True
) -> np.ndarray:
    """An image with faces ``(cx, cy, size, mouth_open)``, slightly blurred like a camera's."""
    image = blank(width, height)
    for cx, cy, size, mouth in faces:
        draw_face(image, cx, cy, size, mouth)
    return cv2.GaussianBlur(image, (0, 0), 1.2) if blur else image


@dataclass(frozen=True, slots=True)
class DrawnFace:
    """A face at ``camera_deg`` from the camera's axis (positive: left), whose mouth moves during
    the spans of ``talking`` (seconds from the start of the video)."""

    camera_deg: float
    talking: Sequence[tuple[float, float]] = ()
    size: int = 110


def write_faces_video(
    path: str | Path, seconds: float, faces: Sequence[DrawnFace], *, hfov_deg: float = 60.0, fps: int = 10
) -> Path:
    """A video of ``faces`` (MJPG in .avi, MPEG-4 in .mp4) seen through a lens of ``hfov_deg``."""
    p = Path(path)
    fourcc = cv2.VideoWriter.fourcc(*("mp4v" if p.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(p), fourcc, fps, (WIDTH, HEIGHT))
    columns = [column_for(face.camera_deg, WIDTH, hfov_deg) for face in faces]
    try:
        for k in range(int(seconds * fps) + 1):
            t = k / fps
            drawn = []
            for face, column in zip(faces, columns, strict=True):
                speaking = any(start <= t <= end for start, end in face.talking)
                drawn.append((column, HEIGHT // 2, face.size, float(k % 2) if speaking else 0.0))
            writer.write(scene(drawn))
    finally:
        writer.release()
    return p
