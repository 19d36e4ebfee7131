"""The whole agent with a model that sees and hears (``policy.model_input: text,image,audio``) on a
recording and a video of drawn faces: every request of a turn carries the frames sampled while
the user spoke (JPEGs of the configured size showing the drawn scene) and the utterance (a WAV of
its length); the model's ``describe_scene`` answer becomes a ``scene`` event that the next turn's
context includes; ``avagent run --describe`` shows the new stages."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from avagent.agent.config import parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.cli.main import main
from avagent.perception.listening import POSTROLL_S, PREROLL_S
from avagent.sim.faces import column_for
from tests.avllm_support import FACE_ANGLES, HFOV_DEG, omni_config, sense_resources, write_faces_video
from tests.conftest import SceneFactory
from tests.omni_server import Answer, omni_server
from tests.test_wiring import assert_published_as_declared

seeing_resources = pytest.fixture(scope="module")(sense_resources)


def face_columns(image: np.ndarray) -> list[float]:
    """Where OpenCV's face detector finds faces in ``image``: the centre column of each."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(20, 20))
    return sorted(float(x + w / 2) for x, y, w, h in found)


@pytest.mark.slow
async def test_a_model_that_sees_and_hears_answers_about_the_scene_with_the_agents_tools(
    make_scene: SceneFactory, tmp_path: Path, seeing_resources: Resources
) -> None:
    scene, path = make_scene(["what do you see", "turn left"], snr_db=25.0, seed=3, gap_s=2.5)
    video = write_faces_video(tmp_path / "room.avi", scene.duration + 1.0, talking=scene)
    async with omni_server(
        Answer(
            text="Let me look. ", tool_calls=[("describe_scene", '{"question": "what do you see"}', "d1")]
        ),
        Answer(text="I see two people."),
        Answer(text="Turning left. ", tool_calls=[("turn", '{"direction": "left"}', "t1")]),
        Answer(text="Done."),
    ) as server:
        config = parse_config(omni_config(server.base_url, video))
        result = await run_on_file(path, config, resources=seeing_resources)
    assert not server.problems
    assert len(server.seen) == 4
    ask, after_tool, turn_left, _done = server.seen
    turns = {t["turn"]: t for t in result.of_type("turn_ended")}
    assert ask.text.endswith("what do you see")
    assert 1 <= len(ask.images) <= 4
    expected = [column_for(a, 640, HFOV_DEG) / 2 for a in sorted(FACE_ANGLES, reverse=True)]
    for image in ask.images:
        assert image.shape == (240, 320, 3)
        found = face_columns(image)
        assert len(found) == 2, "the drawn scene: two faces"
        assert all(abs(f - e) < 12 for f, e in zip(found, expected, strict=True))
    [(audio, rate)] = ask.audio
    assert rate == 16000
    cut = turns[1]["end"] - turns[1]["start"] + PREROLL_S + POSTROLL_S
    assert abs(audio.shape[0] / rate - cut) < 0.01, "the utterance, as the listener cut it"
    spoken = scene.phrases[0].end - scene.phrases[0].start
    assert abs(audio.shape[0] / rate - PREROLL_S - POSTROLL_S - spoken) < 0.2
    assert len(after_tool.images) == len(ask.images), "every request of the turn shows its frames"
    tool_message = next(m for m in after_tool.body["messages"] if m["role"] == "tool")
    assert tool_message["content"].startswith("I see two faces")
    assert turn_left.text.endswith("turn left")
    assert "scene (the agent's own senses" in turn_left.text, "the scene event is in the context"
    assert len(turn_left.audio) == 1
    assert turn_left.audio[0][0].shape[0] != audio.shape[0], "its own utterance"
    users = [m for m in turn_left.body["messages"] if m["role"] == "user"]
    assert isinstance(users[0]["content"], str), "the first turn's frames are not sent again"
    assert [c["name"] for c in result.of_type("tool_call")] == ["describe_scene", "turn"]
    [seen] = result.of_type("scene")
    assert seen["source"] == "perception"
    assert [s["text"] for s in result.of_type("say")] == [
        "Let me look.",
        "I see two people.",
        "Turning left.",
        "Done.",
    ]
    assert not result.of_type("error")
    assert_published_as_declared([result.source, *result.agent.stages], result.events)


def test_describe_shows_the_senses_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_faces_video(tmp_path / "still.avi", 1.0)
    config = tmp_path / "omni.yaml"
    config.write_text(json.dumps(omni_config("http://127.0.0.1:9/v1", video)))
    assert main(["run", "--config", str(config), "--describe", "--json"]) == 0
    rows = {r["stage"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["frame_sampler"]["consumes"] == ["VideoFrame", "speech_started", "speech_ended", "faces"]
    assert "frame_sampler" in rows["video_file"]["readers"]
    assert rows["avllm"]["produces"] == ["scene", "error"]
    assert "policy" in rows["avllm"]["readers"], "scene events reach the policy's context"
    assert "sound_log" in rows["listener"]["readers"]


def test_bad_model_io_settings_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--describe", "--model-input", "image"]) == 2
    assert "the model needs the user's words" in capsys.readouterr().err
    assert main(["run", "--describe", "--model-input", "text,smell"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "model_input" in err
    assert main(["run", "--describe", "--model-output", "audio"]) == 2
    assert "always has text" in capsys.readouterr().err
