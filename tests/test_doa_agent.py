"""The whole agent on multichannel recordings: sound directions (and, with a video, faces and the
active speaker) alongside the other events, a head that turns toward who speaks, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.cli.main import main
from avagent.core.angles import wrap180
from avagent.io.head import SimulatedPanTiltHead
from avagent.perception.arrays import preset
from avagent.sim.faces import column_for, scene
from avagent.sim.room import RoomRecording, Utterance, simulate_room
from tests.test_wiring import assert_published_as_declared

TALKS = [
    Utterance("turn left", 30.0),
    Utterance("what time is it", 330.0, voice="en"),
    Utterance("look at me", 30.0),
]


@pytest.fixture(scope="module")
def two_talkers(tmp_path_factory: pytest.TempPathFactory) -> tuple[RoomRecording, Path]:
    recording = simulate_room(TALKS, preset("respeaker4"), rt60_s=0.3, snr_db=15.0, gap_s=2.5, seed=21)
    return recording, recording.write(tmp_path_factory.mktemp("agent") / "two_talkers.wav")


def config_with(**sections: object) -> AgentConfig:
    return parse_config(dict(sections))


@pytest.mark.slow
async def test_the_agent_reports_directions_and_turns_its_head_to_each_talker(
    two_talkers: tuple[RoomRecording, Path], resources: Resources
) -> None:
    recording, path = two_talkers
    config = config_with(array={"preset": "respeaker4"}, head={"enabled": True, "max_speed_dps": 90.0})
    pans: list[tuple[float, float]] = []

    def watch_head(agent: Agent) -> None:
        head = agent.parts.spatial.head
        assert isinstance(head, SimulatedPanTiltHead)
        agent.clock.add_listener(lambda _a, b: pans.append((b, head.pose().pan_deg)))

    result = await run_on_file(path, config, resources=resources, setup=watch_head)
    directions = [d for d in result.of_type("sound_direction") if d["final"]]
    assert [round(d["azimuth_deg"] / 10) * 10 % 360 for d in directions] == [30, 330, 30]
    assert [d["source_id"] for d in directions] == [1, 2, 1]
    assert len(result.of_type("transcript")) == 3, "the rest of the agent works as before"
    assert_published_as_declared([result.source, *result.agent.stages], result.events)
    head = result.agent.parts.spatial.head
    assert isinstance(head, SimulatedPanTiltHead)
    assert len(head.commands) <= 4, "one move per change of talker (plus an interim), no jitter"
    # Shortly after each utterance ends, the head faces its talker.
    for talk in recording.utterances:
        pan_after = next(p for t, p in pans if t >= talk.end + 1.2)
        assert abs(wrap180(pan_after - talk.azimuth_deg)) < 6.0
    assert not result.of_type("error")


def write_video(path: Path, recording: RoomRecording, fps: int = 15) -> Path:
    """Two drawn faces where the two talkers stand (camera along +x, 90 degree lens); each talker's
    mouth moves while they speak."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (640, 480))
    left, right = column_for(30.0, 640, 90.0), column_for(-30.0, 640, 90.0)
    for k in range(int(recording.duration * fps) + 1):
        t = k / fps
        speaking = [u for u in recording.utterances if u.start <= t <= u.end]
        moving = speaking[0].azimuth_deg if speaking else None
        mouth_left = float(k % 2) if moving == 30.0 else 0.0
        mouth_right = float(k % 2) if moving == 330.0 else 0.0
        writer.write(scene([(left, 240, 110, mouth_left), (right, 240, 110, mouth_right)]))
    writer.release()
    return path


@pytest.mark.slow
async def test_with_a_video_the_speaker_is_named_by_face_and_the_head_follows_faces(
    two_talkers: tuple[RoomRecording, Path], resources: Resources, tmp_path: Path
) -> None:
    recording, path = two_talkers
    video = write_video(tmp_path / "faces.avi", recording)
    config = config_with(
        array={"preset": "respeaker4"},
        camera={"source": str(video), "fps": 10, "hfov_deg": 90.0},
        head={"enabled": True},
    )
    result = await run_on_file(path, config, resources=resources)
    faces = result.of_type("faces")
    assert len(faces) > 5 * recording.duration, "about ten frames a second, in step with the audio"
    ids = {f["id"] for event in faces for f in event["faces"]}
    assert len(ids) == 2, "two people, two stable ids"
    first = next(e for e in faces if len(e["faces"]) == 2)
    by_side = {round(f["bearing_deg"] / 10) * 10 % 360: f["id"] for f in first["faces"]}
    assert set(by_side) == {30, 330}
    speakers = [s for s in result.of_type("active_speaker") if s["final"]]
    assert [s["face_id"] for s in speakers] == [by_side[30], by_side[330], by_side[30]]
    assert all(s["method"] == "direction" for s in speakers)
    head = result.agent.parts.spatial.head
    assert isinstance(head, SimulatedPanTiltHead)
    assert abs(wrap180(head.target()[0] - 30.0)) < 2.0, "the head ends on the last speaker's face"
    assert not result.of_type("error")
    assert_published_as_declared([result.source, *result.agent.stages], result.events)


def test_cli_doa_prints_one_line_per_segment(
    two_talkers: tuple[RoomRecording, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    recording, path = two_talkers
    assert main(["doa", str(path), "--array", "respeaker4", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    for line, talk in zip(lines, recording.utterances, strict=True):
        assert set(line) >= {"start", "end", "azimuth_deg", "confidence"}
        assert abs(wrap180(line["azimuth_deg"] - talk.azimuth_deg)) < 5.0
        assert abs(line["start"] - talk.start) < 0.3
    assert main(["doa", str(path), "--array", "respeaker4"]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert len(plain) == 3
    assert len(plain[0].split()) == 4


def test_cli_doa_with_a_geometry_file_and_a_pair_states_the_ambiguity(
    two_talkers: tuple[RoomRecording, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _recording, path = two_talkers
    # Microphones 0 and 2 of the recording form a pair on the x axis, 64 mm apart.
    stereo = tmp_path / "pair.wav"
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32")
    sf.write(str(stereo), audio[:, [0, 2]], rate)
    geometry = tmp_path / "pair.yaml"
    geometry.write_text("mics: [[0.032, 0, 0], [-0.032, 0, 0]]\n")
    assert main(["doa", str(stereo), "--geometry", str(geometry)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all("front/back ambiguous" in line for line in lines)
    # The talkers at 30 and 330 degrees are mirror images across the pair's axis: both are heard
    # at 30 (a pair resolves poorly this near its axis, hence the wider margin).
    assert all(abs(float(line.split()[2]) - 30.0) < 15.0 for line in lines)


def test_cli_bad_input_is_one_line_and_status_2(
    two_talkers: tuple[RoomRecording, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _recording, path = two_talkers
    import soundfile as sf

    mono = tmp_path / "mono.wav"
    sf.write(str(mono), np.zeros(16000, dtype=np.float32), 16000)
    assert main(["doa", str(mono), "--array", "respeaker6"]) == 2
    assert "has 1 channel(s) but the array 'respeaker6' has 6 microphones" in capsys.readouterr().err
    assert main(["doa", str(path), "--geometry", str(tmp_path / "none.yaml")]) == 2
    assert "no such array geometry file" in capsys.readouterr().err
    assert main(["run", "--input", str(mono), "--array", "respeaker4", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "4 microphones" in err
    assert main(["run", "--input", str(path), "--array", "pair", "--video", str(tmp_path / "x.avi")]) == 2
    assert "no such video file" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_run_json_emits_sound_directions_alongside_the_other_events(
    two_talkers: tuple[RoomRecording, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _recording, path = two_talkers
    assert main(["run", "--input", str(path), "--array", "respeaker4", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds.count("speech_ended") == 3
    finals = [e for e in events if e["type"] == "sound_direction" and e["final"]]
    assert len(finals) == 3
    assert all(set(e) >= {"t", "azimuth_deg", "confidence", "start", "end"} for e in finals)
    assert "transcript" in kinds
