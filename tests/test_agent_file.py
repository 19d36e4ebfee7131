"""The whole offline path on synthesised recordings: VAD -> turns -> pocketsphinx -> commands ->
tools -> espeak-ng, checked against the known truth of each scene."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources, default_tools
from avagent.core.events import Transcript
from avagent.io.actuators import SimulatedBody
from avagent.io.file_source import FileAudioSource
from avagent.policy.base import Actions
from tests.conftest import SceneFactory

COMMANDS = [
    ("turn left", "turn", {"direction": "left", "degrees": 90}),
    ("what time is it", "what_time", {}),
    ("turn right forty five degrees", "turn", {"direction": "right", "degrees": 45}),
    ("look at one hundred twenty degrees", "look_at", {"azimuth_deg": 120}),
    ("say thank you", "say", {"text": "thank you"}),
    ("stop", "stop", {}),
]


async def test_spoken_commands_become_tool_calls_and_spoken_answers(
    make_scene: SceneFactory, resources: Resources
) -> None:
    scene, path = make_scene([c[0] for c in COMMANDS], gap_s=3.5, snr_db=20.0, seed=1)
    result = await run_on_file(path, resources=resources)

    transcripts = [t["text"] for t in result.of_type("transcript")]
    assert transcripts == [c[0] for c in COMMANDS]
    calls = [(c["name"], c["args"]) for c in result.of_type("tool_call")]
    assert calls == [(name, args) for _, name, args in COMMANDS]
    assert all(r["ok"] for r in result.of_type("tool_result"))
    spoken = [s["text"] for s in result.of_type("speaking_started")]
    assert spoken[0] == "Turning left 90 degrees."
    assert spoken[-1] == "Stopping."
    # Each answer is heard after its command ended, and before the next command begins.
    starts = [s["t"] for s in result.of_type("speaking_started")]
    for phrase, start in zip(scene.phrases, starts, strict=True):
        assert phrase.end < start < phrase.end + 0.5
        voice = result.voice_between(start, start + 0.3)
        assert np.sqrt(np.mean(voice**2)) > 0.01, "the answer must be audible in the output"
    assert not result.of_type("error")


class Chatty:
    """A policy with a long answer to everything (a stand-in for a talkative model)."""

    name = "chatty"

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        self.heard.append(transcript.text)
        await actions.say(
            "Let me tell you a long story. It begins on a quiet morning. "
            "The robot woke up and looked around. Then it went on and on."
        )


async def test_the_user_cuts_in_and_the_voice_stops_at_once(
    make_scene: SceneFactory, resources: Resources
) -> None:
    # The second command starts 1.2 s after the first ends: well inside the long answer.
    scene, path = make_scene(["what time is it", "turn left"], gap_s=1.2, snr_db=20.0, seed=5)
    policy = Chatty()
    result = await run_on_file(path, resources=resources, policy=policy)

    assert policy.heard == ["what time is it", "turn left"], "the words that cut in are the next turn"
    pause = result.of_type("pause_speaking")
    barge = result.of_type("barge_in")
    assert len(pause) == 1
    assert len(barge) == 1
    onset = scene.phrases[1].start
    assert onset < pause[0]["t"] < onset + 0.2
    assert pause[0]["t"] < barge[0]["t"] < onset + 0.5
    # What was heard of the cut answer is recorded, and nothing of it is heard after the pause.
    cut = [e for e in result.of_type("speaking_ended") if e["interrupted"]]
    assert cut[0]["turn"] == 1
    assert 0.0 < cut[0]["played_s"] < cut[0]["total_s"]
    after_pause = result.voice_between(pause[0]["t"] + 0.05, scene.phrases[1].end)
    assert np.abs(after_pause).max() == 0.0


async def test_a_short_backchannel_does_not_interrupt(make_scene: SceneFactory, resources: Resources) -> None:
    scene, path = make_scene(["what time is it", "yeah"], gap_s=1.0, snr_db=30.0, seed=6, rate_wpm=[150, 300])
    assert scene.phrases[1].end - scene.phrases[1].start < 0.25
    policy = Chatty()
    result = await run_on_file(path, resources=resources, policy=policy)
    assert policy.heard == ["what time is it"], "the backchannel is not a turn"
    assert result.of_type("barge_in") == []
    assert len(result.of_type("pause_speaking")) == len(result.of_type("resume_speaking")) == 1
    assert not any(e["interrupted"] for e in result.of_type("speaking_ended"))
    spoken = sum(e["played_s"] for e in result.of_type("speaking_ended"))
    total = sum(e["total_s"] for e in result.of_type("speaking_ended"))
    assert spoken == pytest.approx(total)


async def test_a_failing_tool_and_a_failing_policy_never_stop_the_agent(
    make_scene: SceneFactory, resources: Resources
) -> None:
    body = SimulatedBody()
    tools = default_tools(AgentConfig(), body)

    class Flaky:
        name = "flaky"
        calls = 0

        async def respond(self, transcript: Transcript, actions: Actions) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("the policy tripped")
            if self.calls == 2:
                outcome = await actions.call_tool("turn", {"direction": "up"})
                await actions.say("ok" if outcome.ok else "Sorry, I could not do that.")
                return
            outcome = await actions.call_tool("stop", {})
            await actions.say(outcome.result)

    _, path = make_scene(["turn left", "turn right", "stop"], gap_s=3.0, snr_db=20.0, seed=7)
    result = await run_on_file(path, resources=resources, tools=tools, body=body, policy=Flaky())
    errors = result.of_type("error")
    assert [(e["stage"], "tripped" in e["message"]) for e in errors] == [("policy", True)]
    results = result.of_type("tool_result")
    assert [(r["name"], r["ok"]) for r in results] == [("turn", False), ("stop", True)]
    assert "direction" in results[0]["result"]
    assert [s["text"] for s in result.of_type("say")] == ["Sorry, I could not do that.", "Stopping."]
    assert body.stops == 1


async def test_real_time_pacing_gives_the_same_answers(
    make_scene: SceneFactory, resources: Resources
) -> None:
    scene, path = make_scene(["turn left", "stop"], gap_s=2.5, snr_db=20.0, seed=8, lead_s=0.5, tail_s=0.5)
    started = time.monotonic()
    result = await run_on_file(path, resources=resources, realtime=True)
    took = time.monotonic() - started
    assert [c["name"] for c in result.of_type("tool_call")] == ["turn", "stop"]
    assert took >= scene.duration - 0.1, "paced by the wall clock"
    latencies = result.of_type("latency")
    assert len(latencies) == 2
    assert all(0.0 < lat["steps_ms"]["first_audio"] < 1500.0 for lat in latencies)


async def test_stop_is_idempotent_and_ends_a_live_run(make_scene: SceneFactory, resources: Resources) -> None:
    _, path = make_scene(["turn left"], snr_db=20.0, seed=9, lead_s=4.0, tail_s=4.0)
    agent = Agent(resources=resources, realtime=True)
    source = FileAudioSource(path, agent.bus, agent.clock, realtime=True)
    await agent.stop()  # before running: harmless
    task = asyncio.create_task(agent.run(source))
    await asyncio.sleep(0.5)
    await asyncio.gather(agent.stop(), agent.stop())
    await asyncio.wait_for(task, 2.0)
    assert source.frames_sent < 100, "the run ended long before the file did"
    remaining = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert remaining == [], f"tasks left behind: {remaining}"
