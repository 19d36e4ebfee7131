"""A tool that needs confirming, asked and answered aloud: the offline recogniser hears the yes or
no (its grammar gains them), and only a yes runs the tool."""

from __future__ import annotations

import asyncio

from avagent.agent.config import parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.core.events import Transcript
from avagent.policy.commands import CommandPolicy
from avagent.tools.confirm import CONFIRM_PHRASES
from avagent.tools.executor import ToolExecutor
from avagent.tools.phrases import CommandPhrases
from avagent.tools.registry import tool
from tests.conftest import SceneFactory
from tests.policy_support import Counter, policy_stage

QUESTION_UNLOCK = "Shall I unlock door? Please say yes or no."
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


async def test_an_unsure_command_for_a_tool_that_asks_first_is_asked_about() -> None:
    counter = Counter()

    @tool(phrases=["unlock the door"], permission="confirm")
    async def unlock_door() -> str:
        """Unlock the front door."""
        counter.calls.append(("unlock_door", {}))
        return "The door is unlocked."

    @tool(phrases=["turn left"])
    async def turn() -> str:
        """Turn left."""
        counter.calls.append(("turn", {}))
        return "Turning."

    phrases = CommandPhrases([unlock_door, turn], CONFIRM_PHRASES)

    def policy(executor: ToolExecutor) -> CommandPolicy:
        return CommandPolicy(phrases, exact=True, asks=lambda name: executor.permission(name) == "confirm")

    async with policy_stage(policy, tools=[unlock_door, turn], counter=counter) as h:
        # Unsure of a tool that runs at once: not run, "sorry".
        await h.publish(Transcript(t=1.0, text="turn left", turn=1, confidence=0.5))
        await h.settled()
        assert counter.calls == []
        assert h.said()[-1] == "Sorry, I did not understand."
        # Unsure of a tool that asks first: asked, and run on a yes.
        await h.publish(Transcript(t=2.0, text="unlock the door", turn=2, confidence=0.5))
        for _ in range(500):  # the question is asked, then the answer awaited
            if QUESTION_UNLOCK in h.said():
                break
            await asyncio.sleep(0.01)
        assert h.said()[-1] == QUESTION_UNLOCK
        assert counter.calls == []
        h.turn = 2
        await h.hear("yes")
        assert counter.names() == ["unlock_door"]
        # Sure of it: run at once.
        await h.publish(Transcript(t=5.0, text="turn left", turn=4, confidence=1.0))
        await h.settled()
        assert counter.names() == ["unlock_door", "turn"]
