"""The active speaker on synthetic scenes with known truth: by direction when one face matches,
by mouth motion with the voice when faces are too close together, by sound alone when none does."""

from __future__ import annotations

import cv2
import numpy as np

from avagent.core.bus import Bus
from avagent.core.events import ActiveSpeaker, FaceRecord, Faces, SoundDirection, SpeechEnded, SpeechStarted
from avagent.perception.face_detection import CameraGeometry, HaarFaceDetector, face_record
from avagent.perception.face_tracks import FaceTracker
from avagent.perception.speaker import ActiveSpeakerStage, MouthHistory, SpeakerSettings, choose_speaker
from avagent.sim.faces import column_for, scene


def face(face_id: int, bearing: float, motion: float = 0.0) -> FaceRecord:
    return FaceRecord(id=face_id, box=(0, 0, 10, 10), bearing_deg=bearing, mouth_motion=motion)


def test_one_face_near_the_sound_is_the_speaker() -> None:
    faces = [face(1, 20.0), face(2, 75.0), face(3, 350.0)]
    choice = choose_speaker(faces, 71.0, SpeakerSettings(), MouthHistory(10.0), (0.0, 1.0))
    assert choice.face is not None
    assert choice.face.id == 2
    assert choice.method == "direction"
    wrapped = choose_speaker(faces, 3.0, SpeakerSettings(), MouthHistory(10.0), (0.0, 1.0))
    assert wrapped.face is not None
    assert wrapped.face.id == 3, "350 and 3 degrees are 13 degrees apart"


def test_no_face_near_the_sound_means_someone_out_of_view() -> None:
    choice = choose_speaker([face(1, 20.0)], 200.0, SpeakerSettings(), MouthHistory(10.0), (0.0, 1.0))
    assert choice.face is None
    assert choice.method == "sound"


def test_close_faces_are_told_apart_by_the_mouth_that_moves_with_the_voice() -> None:
    mouths = MouthHistory(20.0)
    mouths.speech.append((2.0, 4.0))
    for k in range(90):  # 15 frames per second over six seconds
        t = k / 15
        speaking = 2.0 <= t <= 4.0
        wobble = 0.03 * (1 + np.sin(k))
        mouths.add_faces(
            t, [face(1, 30.0, wobble if speaking else 0.002), face(2, 38.0, 0.002 + 0.01 * (k % 2))]
        )
    faces = [face(1, 30.0), face(2, 38.0)]
    # The sound is nearer face 2, but face 1's mouth is the one moving while the voice is heard.
    choice = choose_speaker(faces, 36.0, SpeakerSettings(), mouths, (0.5, 4.0))
    assert choice.face is not None
    assert choice.face.id == 1
    assert choice.method == "mouth"
    assert mouths.correlation(1, 0.5, 4.0) > 0.5
    assert abs(mouths.correlation(2, 0.5, 4.0)) < 0.3


def test_without_mouth_evidence_the_nearest_close_face_is_chosen() -> None:
    choice = choose_speaker(
        [face(1, 30.0), face(2, 38.0)], 36.0, SpeakerSettings(), MouthHistory(10.0), (0.0, 1.0)
    )
    assert choice.face is not None
    assert choice.face.id == 2
    assert choice.method == "direction"


def test_the_stage_on_drawn_frames_picks_the_talking_face_of_two_close_ones() -> None:
    """Two faces 12 degrees apart (both within the tolerance of the sound), a narrow lens, and only
    the left one's mouth opening and closing while the VAD hears speech."""
    geometry = CameraGeometry(hfov_deg=40.0, yaw_deg=0.0)
    left, right = column_for(8.0, 640, 40.0), column_for(-4.0, 640, 40.0)
    detector, tracker = HaarFaceDetector(), FaceTracker()
    stage = ActiveSpeakerStage(Bus())  # driven through handle(): what it would publish is returned
    out: list[ActiveSpeaker] = []
    fps = 10
    for k in range(5 * fps):
        t = k / fps
        talking = 1.5 <= t <= 3.5
        mouth = (k % 2) * 1.0 if talking else 0.0
        image = scene([(left, 240, 110, mouth), (right, 240, 110, 0.0)])
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        tracks = tracker.update(detector.detect(image, gray), gray)
        stage.handle(Faces(t=t, faces=tuple(face_record(x, 640, geometry) for x in tracks)))
        if abs(t - 1.5) < 1e-9:
            stage.handle(SpeechStarted(t=1.5))
        if abs(t - 3.6) < 1e-9:
            stage.handle(SpeechEnded(t=3.6, start=1.5, end=3.5))
            event = stage.handle(SoundDirection(t=3.5, azimuth_deg=2.0, confidence=0.4, start=1.5, end=3.5))
            assert event is not None
            out.append(event)
    assert len(out) == 1
    speaker = out[0]
    assert speaker.method == "mouth"
    assert speaker.azimuth_deg == 8.0 or abs(speaker.azimuth_deg - 8.0) < 1.5
    left_id = min(tracker.tracks, key=lambda x: x.box[0]).id
    assert speaker.face_id == left_id


def test_without_an_array_the_moving_mouth_names_the_speaker_when_speech_ends() -> None:
    stage = ActiveSpeakerStage(Bus(), has_array=False)
    for k in range(60):
        t = k / 15
        talking = 1.5 <= t <= 3.0
        stage.handle(
            Faces(t=t, faces=(face(1, 20.0, 0.002), face(2, 340.0, 0.04 * (k % 2) if talking else 0.002)))
        )
        if k == round(1.5 * 15):
            assert stage.handle(SpeechStarted(t=1.5)) is None
    event = stage.handle(SpeechEnded(t=3.2, start=1.5, end=3.0))
    assert event is not None
    assert event.face_id == 2
    assert event.method == "mouth"
    assert event.azimuth_deg == 340.0
    # The faces were last seen seconds before this speech: nobody in view is named.
    stage.handle(Faces(t=5.0, faces=(face(1, 20.0, 0.002), face(2, 340.0, 0.002))))
    assert stage.handle(SpeechEnded(t=9.0, start=7.0, end=8.8)) is None
