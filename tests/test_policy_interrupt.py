"""Interruptions at the policy level, with a slow scripted model: the floor held at the onset of
the user's speech, a backchannel that changes nothing, a barge-in that drops what has not started,
tools cancelled or left to finish per their flag, and a history true to what was heard."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from avagent.core.events import BargeIn, PauseSpeaking, ResumeSpeaking, SpeakingEnded, Stop
from avagent.policy.memory import INTERRUPTION_NOTE
from avagent.policy.runner import INTERRUPTED
from avagent.sim.scripted_model import scripted
from avagent.tools.registry import Tool, tool
from tests.policy_support import Counter, PolicyHarness, llm_policy, policy_stage

LONG = "One is first. Two is second. Three is third. Four is fourth. Five is fifth."


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id}


async def until(check: Any) -> None:
    """Poll ``check`` (a condition on recorded events, which no event signals) for up to 5 s."""
    async with asyncio.timeout(5.0):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def motion_tools(counter: Counter, finished: list[str]) -> list[Tool]:
    @tool(cancel_on_interrupt=True)
    async def scan_room() -> str:
        """Look around the room (can be cancelled)."""
        counter.calls.append(("scan_room", {}))
        await asyncio.sleep(0.4)
        finished.append("scan_room")
        return "Two chairs and a table."

    @tool(cancel_on_interrupt=False)
    async def park_arm() -> str:
        """Put the arm in its rest position (must finish once started)."""
        counter.calls.append(("park_arm", {}))
        await asyncio.sleep(0.4)
        finished.append("park_arm")
        return "The arm is parked."

    @tool
    async def wave() -> str:
        """Wave hello."""
        counter.calls.append(("wave", {}))
        return "Waving."

    return [scan_room, park_arm, wave]


async def test_a_backchannel_holds_the_answer_and_then_loses_nothing() -> None:
    model = scripted(
        AIMessage(content=LONG, tool_calls=[call("weather", {"city": "Oslo"}, "w")]),
        "Done.",
        chunk_delay_s=0.02,
    )
    async with policy_stage(lambda ex: llm_policy(model, ex)) as h:
        await h.hear("count to five", settle=False)
        await until(lambda: len(h.said()) >= 1)
        await h.publish(PauseSpeaking(t=0.0))
        await asyncio.sleep(0.05)
        held = len(h.said())
        await asyncio.sleep(0.3)
        assert len(h.said()) == held, "nothing is said while the floor is held"
        assert h.runner.floor.held
        await h.publish(ResumeSpeaking(t=0.0))
        await h.settled()
        assert h.said() == [
            "One is first.",
            "Two is second.",
            "Three is third.",
            "Four is fourth.",
            "Five is fifth.",
            "Done.",
        ]
        assert h.counter.names() == ["weather"]


async def test_a_barge_in_drops_tool_calls_that_have_not_started() -> None:
    model = scripted(
        AIMessage(content="Okay. ", tool_calls=[call("weather", {"city": "Rome"}, "late")]),
        chunk_delay_s=0.05,
    )
    async with policy_stage(lambda ex: llm_policy(model, ex)) as h:
        await h.hear("what is the weather", settle=False)
        await until(lambda: h.said() == ["Okay."])
        await h.publish(PauseSpeaking(t=0.0))
        await asyncio.sleep(0.2)
        await h.publish(BargeIn(t=0.0))
        await h.settled()
        await asyncio.sleep(0.3)
        assert h.counter.calls == [], "a call of an interrupted answer never runs late"
        assert not h.events("tool_call")
        assert not h.runner.busy


async def test_running_tools_are_cancelled_or_finish_per_their_flag() -> None:
    counter = Counter()
    finished: list[str] = []
    model = scripted(
        AIMessage(content="", tool_calls=[call("scan_room", {}, "s"), call("park_arm", {}, "p")]),
        "Never said.",
        "What now?",
    )
    tools = motion_tools(counter, finished)
    async with policy_stage(lambda ex: llm_policy(model, ex), tools=tools, counter=counter) as h:
        await h.hear("scan the room and park the arm", settle=False)
        await until(lambda: len(counter.calls) == 2)
        await h.publish(BargeIn(t=0.0))
        await h.settled()
        assert finished == ["park_arm"], "the cancellable tool was cancelled, the other finished"
        results = {r["call_id"]: r for r in h.events("tool_result")}
        assert results["s"]["result"] == INTERRUPTED
        assert not results["s"]["ok"]
        assert results["p"]["ok"]
        assert results["p"]["result"] == "The arm is parked."
        assert "Never said." not in h.said()
        await h.hear("hello")
        tool_results = {
            m.tool_call_id: str(m.content) for m in model.requests[1][0] if isinstance(m, ToolMessage)
        }
        assert tool_results == {"s": f"error: {INTERRUPTED}", "p": "The arm is parked."}


async def test_a_stop_cancels_every_tool() -> None:
    counter = Counter()
    finished: list[str] = []
    model = scripted(AIMessage(content="", tool_calls=[call("park_arm", {}, "p")]), "Never said.")
    tools = motion_tools(counter, finished)
    async with policy_stage(lambda ex: llm_policy(model, ex), tools=tools, counter=counter) as h:
        await h.hear("park the arm", settle=False)
        await until(lambda: len(counter.calls) == 1)
        await h.publish(Stop(t=0.0, reason="test"))
        await h.settled()
        assert finished == []
        [result] = h.events("tool_result")
        assert result["result"] == INTERRUPTED


async def heard(h: PolicyHarness, turn: int, text: str, fraction: float, interrupted: bool) -> None:
    """The speaker reports having played ``fraction`` of ``text``."""
    await h.publish(
        SpeakingEnded(
            t=0.0, text=text, turn=turn, interrupted=interrupted, played_s=fraction * 2.0, total_s=2.0
        )
    )


async def test_the_history_holds_what_was_heard_of_an_interrupted_answer() -> None:
    model = scripted(LONG, "Where was I?", chunk_delay_s=0.01)
    async with policy_stage(lambda ex: llm_policy(model, ex)) as h:
        await h.hear("count to five")
        assert len(h.said()) == 5
        # The user cut in while the second sentence was playing: half of it was heard, the rest not.
        await heard(h, 1, "One is first.", 1.0, False)
        await heard(h, 1, "Two is second.", 0.5, True)
        for sentence in h.said()[2:]:
            await heard(h, 1, sentence, 0.0, True)
        await h.hear("wait, stop")
        history = model.requests[1][0]
        [answer] = [m for m in history if isinstance(m, AIMessage)]
        assert answer.content == f"One is first. Two {INTERRUPTION_NOTE}"


async def test_an_answer_cancelled_while_generating_is_marked_in_the_history() -> None:
    model = scripted(LONG, "Yes?", chunk_delay_s=0.03)
    async with policy_stage(lambda ex: llm_policy(model, ex)) as h:
        await h.hear("count to five", settle=False)
        await until(lambda: len(h.said()) >= 2)
        await h.publish(BargeIn(t=0.0))
        await h.settled()
        said = h.said()
        assert 2 <= len(said) < 5
        for sentence in said:
            await heard(h, 1, sentence, 1.0, False)
        await h.hear("hey")
        [answer] = [m for m in model.requests[1][0] if isinstance(m, AIMessage)]
        assert answer.content == " ".join(said) + " " + INTERRUPTION_NOTE
