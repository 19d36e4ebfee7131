"""``describe_scene`` and ``listen``: offline, from the agent's own senses, through the spoken
phrases of the offline grammar; with a vision model of their own (``avllm.model``) that sees the
latest frames; and honest again when that model fails. Every answer is a ``scene`` event."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avagent.agent.config import parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources, default_tools
from avagent.cli.main import main
from avagent.io.actuators import SimulatedBody
from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer
from avagent.perception.avllm.senses import AgentSenses
from avagent.policy.base import Policy
from avagent.policy.commands import CommandPolicy
from avagent.policy.scene import SceneDescriber, SceneSettings
from avagent.sim.faces import scene
from avagent.sim.scene import synthesize_scene
from avagent.tools.executor import ToolExecutor
from avagent.tools.phrases import CommandPhrases
from avagent.tools.senses import SCENE_QUESTIONS, SOUND_QUESTIONS
from tests.avllm_support import chat_model, media_policy, sense_resources, tone, write_faces_video
from tests.conftest import SceneFactory
from tests.omni_server import Answer, omni_server
from tests.test_asr import COMMANDS, utterances
from tests.test_wiring import assert_published_as_declared

seeing_resources = pytest.fixture(scope="module")(sense_resources)


@pytest.mark.slow
def test_run_with_a_video_answers_what_do_you_see_and_who_is_speaking_with_no_model(
    make_scene: SceneFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene, question = make_scene(["what do you see", "who is speaking"], snr_db=25.0, seed=3)
    video = write_faces_video(tmp_path / "room.mp4", scene.duration + 1.0, talking=scene)
    assert main(["run", "--input", str(question), "--video", str(video), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    calls = [e for e in events if e["type"] == "tool_call"]
    assert [(c["name"], c["args"]) for c in calls] == [
        ("describe_scene", {"question": "what do you see"}),
        ("describe_scene", {"question": "who is speaking"}),
    ]
    scenes = [e for e in events if e["type"] == "scene"]
    assert [s["source"] for s in scenes] == ["perception", "perception"]
    said = [e["text"] for e in events if e["type"] == "say"]
    sight, speaker = said
    assert sight.startswith("I see two faces: face ")
    assert "20 degrees to my left" in sight
    assert "20 degrees to my right" in sight
    left_face = sight.split("face ")[1].split(",")[0]
    assert speaker.startswith(f"Face {left_face}, 20 degrees to my left, was speaking")
    spoken = [e["text"] for e in events if e["type"] == "speaking_started"]
    assert spoken[0] == "I see two faces:", "said aloud, sentence by sentence"
    assert not [e for e in events if e["type"] == "error"]


@pytest.mark.slow
async def test_listen_reports_a_sound_that_was_not_speech(
    tmp_path: Path, seeing_resources: Resources
) -> None:
    scene = synthesize_scene(["what was that sound"], lead_s=3.0, snr_db=30.0, seed=8)
    audio = scene.audio.copy()
    rng = np.random.default_rng(1)
    at, n = int(1.0 * scene.sample_rate), int(0.25 * scene.sample_rate)
    # A knock: a short burst of noise, dying away.
    audio[at : at + n] += (
        0.5 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.04 * scene.sample_rate))
    ).astype(np.float32)
    path = tmp_path / "knock.wav"
    type(scene)(audio, scene.sample_rate, scene.phrases, scene.snr_db).write(path)
    result = await run_on_file(path, parse_config({"avllm": {"tools": True}}), resources=seeing_resources)
    [call] = result.of_type("tool_call")
    assert (call["name"], call["args"]) == ("listen", {"question": "what was that sound"})
    [answer] = result.of_type("scene")
    assert answer["text"].startswith("I heard a sound that was not speech ")
    assert "seconds ago" in answer["text"]
    assert result.of_type("say")[0]["text"] == answer["text"]
    assert not result.of_type("error")


@pytest.mark.slow
async def test_a_vision_model_of_its_own_describes_the_latest_frames_for_the_offline_policy(
    make_scene: SceneFactory, tmp_path: Path, seeing_resources: Resources
) -> None:
    scene, question = make_scene(["what do you see", "what do you see"], snr_db=25.0, seed=3, gap_s=2.5)
    video = write_faces_video(tmp_path / "room.avi", scene.duration + 1.0)
    async with omni_server(
        Answer(text="Two people are looking at me, one on each side."),
        Answer(status=500),
    ) as server:
        config = parse_config(
            {
                "camera": {"source": str(video)},
                "avllm": {"model": "vision", "base_url": server.base_url, "frames": {"max_side": 256}},
            }
        )
        result = await run_on_file(question, config, resources=seeing_resources)
    assert not server.problems
    asked = server.seen[0]
    assert asked.body["model"] == "vision"
    assert "What my own sensors report: I see two faces" in asked.text
    assert asked.text.endswith("The question: what do you see")
    assert asked.images
    assert all(image.shape == (192, 256, 3) for image in asked.images), "fitted inside 256 x 256"
    assert not asked.audio, "text,image by default"
    scenes = result.of_type("scene")
    assert [s["source"] for s in scenes] == ["model", "perception"], "the model failed the second time"
    said = [s["text"] for s in result.of_type("say")]
    assert said[0] == "Two people are looking at me, one on each side."
    assert said[1].startswith("I see two faces")
    [error] = result.of_type("error")
    assert error["stage"] == "avllm"
    assert "HTTP 500" in error["message"]
    assert_published_as_declared([result.source, *result.agent.stages], result.events)


@pytest.mark.slow
def test_the_grammar_with_the_sense_phrases_still_recognises_every_command_and_each_question(
    make_scene: SceneFactory,
) -> None:
    config = parse_config({"avllm": {"tools": True}})
    phrases = CommandPhrases(default_tools(config, SimulatedBody()))
    recognizer = PocketsphinxRecognizer(phrases.jsgf(), processes=0)
    said = [*COMMANDS, *SCENE_QUESTIONS, *SOUND_QUESTIONS]
    for voice in ("en-us", "en-us+f2"):
        scene, _ = make_scene(said, voice=voice, snr_db=20.0, gap_s=0.6, lead_s=0.5, seed=31)
        for text, audio in utterances(scene):
            result = recognizer.transcribe_sync(audio, scene.sample_rate)
            assert result.text == text
            match = phrases.match(result.text, exact=True)
            assert match is not None
            if text in SCENE_QUESTIONS + SOUND_QUESTIONS:
                assert match.args == {"question": text}


def quiet_policy(executor: ToolExecutor, senses: AgentSenses) -> Policy:
    return CommandPolicy(CommandPhrases([]))


async def test_a_scene_model_that_stalls_or_refuses_leaves_the_senses_to_answer() -> None:
    async with (
        omni_server(
            Answer(stall=True),
            Answer(refuse=frozenset({"image"})),
            Answer(text="A room with one person."),
            Answer(text="Still one person, and a hum."),
        ) as server,
        media_policy(quiet_policy) as h,
    ):
        await h.start_speaking(1.0)
        await h.show(scene([(320, 240, 110, 0.0)]), 1.1)
        await h.end_turn("hello", 1.0, 2.0)
        await h.hear(tone(2.0, 120.0), 2.0)
        settings = SceneSettings(model_input=("text", "image", "audio"), timeout_s=0.5)
        describer = SceneDescriber(h.bus, h.senses, chat_model(server.base_url), settings)
        stalled = await describer.describe_scene("what do you see")
        refused_then_answered = await describer.describe_scene("what do you see")
        heard = await describer.listen("what do you hear")
        await h.settled()
    assert stalled == "I cannot tell whether anyone is in view. The picture is well lit and still.", (
        "the senses"
    )
    assert refused_then_answered == "A room with one person."
    assert heard == "Still one person, and a hum."
    assert [s.kinds for s in server.seen] == [{"image", "audio"}, {"image", "audio"}, {"audio"}, {"audio"}]
    assert "question: what do you hear" in server.seen[3].text
    errors = [e["message"] for e in h.events("error")]
    assert len(errors) == 2
    assert "gave no answer within 0.5 s" in errors[0]
    assert "refused the image" in errors[1]
    assert [s["source"] for s in h.events("scene")] == ["perception", "model", "model"]
