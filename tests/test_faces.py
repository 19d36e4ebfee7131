"""Faces on frames the tests draw: detection, stable track ids, bearings, and the stage that runs
detection off the event loop on the newest frame only."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from avagent.core.bus import Bus
from avagent.core.errors import InputError
from avagent.core.events import Faces
from avagent.core.messages import VideoFrame
from avagent.perception.face_detection import CameraGeometry, FaceSettings, HaarFaceDetector, build_detector
from avagent.perception.face_tracks import Detection, FaceTracker, iou
from avagent.perception.faces import FaceStage
from avagent.sim.faces import column_for, scene


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


@pytest.fixture(scope="module")
def haar() -> HaarFaceDetector:
    return HaarFaceDetector()


def test_the_haar_cascade_finds_each_drawn_face_where_it_is(haar: HaarFaceDetector) -> None:
    truth = [(150, 200, 60), (330, 260, 120), (520, 220, 70)]
    image = scene([(x, y, s, 0.0) for x, y, s in truth])
    found = haar.detect(image, grey(image))
    assert len(found) == 3
    for x, y, size in truth:
        centres = [(b.box[0] + b.box[2] / 2, b.box[1] + b.box[3] / 2) for b in found]
        assert min(np.hypot(cx - x, cy - y) for cx, cy in centres) < size * 0.25


def test_no_faces_in_shapes_that_are_not_faces(haar: HaarFaceDetector) -> None:
    image = np.full((480, 640, 3), 120, dtype=np.uint8)
    cv2.rectangle(image, (100, 100), (300, 300), (200, 200, 200), -1)
    cv2.circle(image, (450, 250), 80, (60, 60, 60), -1)
    assert haar.detect(image, grey(image)) == []


def test_a_missing_yunet_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such YuNet model file"):
        build_detector(FaceSettings(model=str(tmp_path / "face_detection_yunet.onnx")))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="cannot load as a YuNet model"):
        build_detector(FaceSettings(model=str(junk)))
    assert isinstance(build_detector(FaceSettings()), HaarFaceDetector)


def test_tracks_keep_their_ids_as_faces_move_and_survive_a_missed_frame(haar: HaarFaceDetector) -> None:
    tracker = FaceTracker(max_missed=2)
    ids_by_side: dict[str, set[int]] = {"left": set(), "right": set()}
    for step in range(12):
        left, right = 140 + 8 * step, 500 - 6 * step
        image = scene([(left, 230, 90, 0.0), (right, 250, 110, 0.0)])
        detections = haar.detect(image, grey(image))
        if step == 6:
            detections = detections[:1]  # the detector misses a face for one frame
        for track in tracker.update(detections, grey(image)):
            cx = track.box[0] + track.box[2] / 2
            ids_by_side["left" if cx < 320 else "right"].add(track.id)
    assert len(ids_by_side["left"]) == 1
    assert len(ids_by_side["right"]) == 1
    assert ids_by_side["left"] != ids_by_side["right"]


def test_a_face_that_leaves_is_dropped_and_a_new_one_gets_a_new_id() -> None:
    tracker = FaceTracker(max_missed=1)
    first = tracker.update([Detection((100, 100, 80, 80), 1.0)])[0].id
    tracker.update([])
    tracker.update([])
    assert tracker.tracks == []
    second = tracker.update([Detection((100, 100, 80, 80), 1.0)])[0].id
    assert second != first
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(1 / 3)


@pytest.mark.parametrize(("camera_deg", "yaw"), [(0.0, 0.0), (30.0, 0.0), (-20.0, 90.0), (40.0, 350.0)])
def test_bearing_from_pixel_column_field_of_view_and_yaw(camera_deg: float, yaw: float) -> None:
    geometry = CameraGeometry(hfov_deg=90.0, yaw_deg=yaw)
    x = column_for(camera_deg, 640, 90.0)
    assert geometry.camera_angle(x, 640) == pytest.approx(camera_deg, abs=0.2)
    assert geometry.bearing(x, 640) == pytest.approx((yaw + camera_deg) % 360.0, abs=0.2)


def test_the_edges_of_the_image_are_half_the_field_of_view_away() -> None:
    geometry = CameraGeometry(hfov_deg=70.0, yaw_deg=0.0)
    assert geometry.camera_angle(0, 640) == pytest.approx(35.0)
    assert geometry.camera_angle(640, 640) == pytest.approx(-35.0)


def test_mouth_motion_rises_only_for_the_face_whose_mouth_moves(haar: HaarFaceDetector) -> None:
    tracker = FaceTracker()
    motion: dict[str, list[float]] = {"left": [], "right": []}
    for step in range(10):
        talking = 1.0 if step % 2 else 0.0
        image = scene([(180, 240, 120, talking), (470, 240, 120, 0.0)])
        for track in tracker.update(haar.detect(image, grey(image)), grey(image)):
            motion["left" if track.box[0] < 320 else "right"].append(track.mouth_motion)
    assert len(motion["left"]) == len(motion["right"]) == 10
    talker, silent = np.mean(motion["left"][1:]), np.mean(motion["right"][1:])
    assert talker > 0.01
    assert silent < talker / 5


async def test_the_stage_detects_on_a_worker_thread_and_keeps_only_the_newest_frame() -> None:
    bus = Bus()
    loop_thread = threading.get_ident()
    threads: list[int] = []

    class RecordingDetector(HaarFaceDetector):
        def detect(self, image: np.ndarray, gray: np.ndarray) -> list[Detection]:
            threads.append(threading.get_ident())
            return super().detect(image, gray)

    x = column_for(20.0, 640, 90.0)
    stage = FaceStage(bus, FaceSettings(hfov_deg=90.0, yaw_deg=10.0), detector=RecordingDetector())
    out = bus.subscribe(Faces, name="test.faces", maxsize=64)
    image = scene([(x, 240, 100, 0.0)])
    task = asyncio.create_task(stage.run())
    for i in range(8):  # published faster than detection: older frames are superseded
        bus.publish_nowait(VideoFrame(image=image, t=i / 30, t_capture=0.0))
    events: list[Faces] = []
    async with asyncio.timeout(10):
        while not events or events[-1].t < 7 / 30:
            events.append(await out.get())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 1 <= len(events) < 8
    assert bus.stats()["faces.video"]["superseded"] >= 1
    assert threads
    assert loop_thread not in threads
    face = events[-1].faces[0]
    assert face.bearing_deg == pytest.approx(30.0, abs=2.0)
    assert face.camera_deg == pytest.approx(20.0, abs=2.0)
    assert events[-1].t == pytest.approx(7 / 30)
