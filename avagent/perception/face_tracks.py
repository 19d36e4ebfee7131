"""Face tracks: stable ids for the faces of successive frames, and how much each mouth moves.

Detections are matched to tracks greedily by overlap (or, for a face that moved more than its
own size allows to overlap, by centre distance); a track that finds no detection coasts for up
to ``max_missed`` frames before it is dropped, so a detector's occasional miss does not renumber
anyone. Mouth motion is the mean absolute change of the lower-middle part of the face between
two frames (grey levels 0..1): it rises while someone talks, which is what tells apart two
faces too close together for the sound's direction to choose between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[int, int, int, int]
"""x, y, width, height in pixels."""

_MOUTH_SIZE = (32, 16)


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float


@dataclass(slots=True)
class FaceTrack:
    id: int
    box: Box
    score: float
    missed: int = 0
    mouth: np.ndarray | None = field(default=None, repr=False)
    mouth_motion: float = 0.0


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / float(aw * ah + bw * bh - inter)


def _centre_distance(a: Box, b: Box) -> float:
    return float(np.hypot(a[0] + a[2] / 2 - b[0] - b[2] / 2, a[1] + a[3] / 2 - b[1] - b[3] / 2))


def mouth_patch(gray: np.ndarray, box: Box) -> np.ndarray | None:
    """The mouth region of a face (the lower-middle part of its box), resampled to a fixed size."""
    x, y, w, h = box
    x0, x1 = x + w // 4, x + (3 * w) // 4
    y0, y1 = y + (5 * h) // 8, y + (19 * h) // 20
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(gray.shape[1], x1), min(gray.shape[0], y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    patch = cv2.resize(gray[y0:y1, x0:x1], _MOUTH_SIZE, interpolation=cv2.INTER_AREA)
    return np.asarray(patch, dtype=np.float32) / 255.0


class FaceTracker:
    """Gives detections stable ids across frames (one tracker per camera)."""

    def __init__(self, *, max_missed: int = 5, min_iou: float = 0.2) -> None:
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.tracks: list[FaceTrack] = []
        self._next_id = 1

    def update(self, detections: list[Detection], gray: np.ndarray | None = None) -> list[FaceTrack]:
        """Match this frame's detections to the tracks; returns the live tracks (seen ones first)."""
        pairs: list[tuple[float, int, int]] = []
        for ti, track in enumerate(self.tracks):
            for di, det in enumerate(detections):
                overlap = iou(track.box, det.box)
                if overlap >= self.min_iou:
                    pairs.append((overlap, ti, di))
                else:
                    near = _centre_distance(track.box, det.box) / max(track.box[2], det.box[2], 1)
                    if near < 0.5:
                        pairs.append((0.5 * (0.5 - near), ti, di))
        pairs.sort(reverse=True)
        used_tracks: set[int] = set()
        used_detections: set[int] = set()
        for _score, ti, di in pairs:
            if ti in used_tracks or di in used_detections:
                continue
            used_tracks.add(ti)
            used_detections.add(di)
            track, det = self.tracks[ti], detections[di]
            track.box, track.score = det.box, det.score
            track.missed = 0
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.missed += 1
        for di, det in enumerate(detections):
            if di not in used_detections:
                self.tracks.append(FaceTrack(self._next_id, det.box, det.score))
                self._next_id += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        if gray is not None:
            for track in self.tracks:
                self._measure_mouth(track, gray)
        return sorted(self.tracks, key=lambda t: (t.missed, t.id))

    @staticmethod
    def _measure_mouth(track: FaceTrack, gray: np.ndarray) -> None:
        patch = mouth_patch(gray, track.box)
        if patch is None:
            track.mouth_motion = 0.0
            track.mouth = None
            return
        previous = track.mouth
        track.mouth_motion = float(np.mean(np.abs(patch - previous))) if previous is not None else 0.0
        track.mouth = patch
