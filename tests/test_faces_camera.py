"""Video in: a capture read on its own thread at the configured rate, and a video file played in
step with the media clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import pytest

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.errors import InputError
from avagent.core.messages import VideoFrame
from avagent.core.streams import OverflowPolicy
from avagent.io.camera import CameraSource, VideoFileSource
from avagent.sim.faces import scene


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "faces.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25, (320, 240))
    for k in range(50):  # two seconds; the face moves one pixel a frame, so frames can be told apart
        writer.write(scene([(100 + k, 120, 60, 0.0)], 320, 240))
    writer.release()
    return path


async def test_a_capture_is_read_on_a_thread_and_sampled_down_to_the_configured_rate(video: Path) -> None:
    bus = Bus()
    frames = bus.subscribe(VideoFrame, name="test.video", maxsize=256)
    camera = CameraSource(str(video), bus, MediaClock(), fps=10.0)
    task = asyncio.create_task(camera.run())
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    got = []
    while (frame := frames.get_nowait()) is not None:
        got.append(frame)
    assert 6 <= len(got) <= 13, "about ten frames in one second"
    assert got[0].image.shape == (240, 320, 3)
    assert camera.frames_published == len(got)


async def test_a_camera_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    camera = CameraSource(str(tmp_path / "nothing.avi"), Bus(), MediaClock())
    with pytest.raises(InputError, match="cannot open"):
        await camera.run()
    with pytest.raises(InputError, match="no such video file"):
        VideoFileSource(tmp_path / "nothing.avi", Bus(), MediaClock())


async def test_a_video_file_follows_the_media_clock_and_waits_for_it(video: Path) -> None:
    bus = Bus()
    clock = MediaClock(extrapolate=False)
    frames = bus.subscribe(VideoFrame, name="test.video", maxsize=1, policy=OverflowPolicy.KEEP_LATEST)
    source = VideoFileSource(video, bus, clock, fps=5.0)
    task = asyncio.create_task(source.run())
    seen: list[VideoFrame] = []
    for step in range(1, 16):  # the "audio" advances 0.1 s at a time
        clock.advance(step * 0.1)
        clock.render()
        due = int(step * 0.1 / 0.2 + 1e-9) + 1
        while len(seen) < due:
            seen.append(await asyncio.wait_for(frames.get(), 5.0))
        assert frames.get_nowait() is None, "no frame before the media clock reaches it"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    times = [round(f.t, 3) for f in seen]
    assert times == sorted(times)
    assert times[:3] == [0.0, 0.2, 0.4]
    assert len(times) == 8
    # The frame published for media time t is the file's frame of that moment (the face in the
    # file moves one pixel a frame, 25 frames a second).
    from avagent.perception.face_detection import HaarFaceDetector

    detector = HaarFaceDetector(min_face_px=30)
    for frame in (seen[2], seen[5]):
        (found,) = detector.detect(frame.image, cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
        centre = found.box[0] + found.box[2] / 2
        assert abs(centre - (100 + 25 * frame.t)) < 5
