"""A tool that needs confirming, asked and answered aloud: the offline recogniser hears the yes or
no (its grammar gains them), and only a yes runs the tool."""

from __future__ import annotations

from avagent.agent.config import parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from tests.conftest import SceneFactory

QUESTION = ["Shall I turn with direction left, degrees 90?", "Please say yes or no."]


async def test_spoken_confirmation_with_the_offline_policy(make_scene: SceneFactory) -> None:
    config = parse_config({"tools": {"permissions": {"turn": "confirm"}}})
    resources = Resources(config)
    try:
        assert "yes" in resources.phrases.words()
        for answer, runs in [("yes", True), ("no", False)]:
            _, path = make_scene(["turn left", answer], gap_s=4.5, snr_db=25.0, seed=8)
            result = await run_on_file(path, config, resources=resources)
            assert [t["text"] for t in result.of_type("transcript")] == ["turn left", answer]
            spoken = [s["text"] for s in result.of_type("speaking_started")]
            assert spoken[:2] == QUESTION
            calls = [r for r in result.of_type("tool_result") if r["name"] == "turn"]
            assert [r["ok"] for r in calls] == [runs]
            assert spoken[-1] == ("Turning left 90 degrees." if runs else "Sorry, I could not do that.")
            assert len(result.of_type("say")) == 2, "the answer is not taken as a new command"
    finally:
        await resources.stop()
