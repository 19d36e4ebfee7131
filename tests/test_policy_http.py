"""The policy over real HTTP: ``ChatOpenAI`` against a scripted OpenAI-compatible server on
127.0.0.1 (SSE, tool-call arguments split across chunks), including the failure cases, and a
spoken command all the way from sound to a tool and back to sound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_openai import ChatOpenAI

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.policy.llm import LLMPolicy
from avagent.tools.executor import ToolExecutor
from tests.conftest import SceneFactory
from tests.openai_server import Reply, scripted_server, tool_call
from tests.policy_support import llm_policy, policy_stage


def chat_model(base_url: str, retries: int = 0) -> ChatOpenAI:
    return ChatOpenAI(model="scripted", base_url=base_url, api_key="x", max_retries=retries, streaming=True)  # type: ignore[arg-type]


def make(base_url: str, retries: int = 0, **kwargs: Any) -> Callable[[ToolExecutor], LLMPolicy]:
    def build(executor: ToolExecutor) -> LLMPolicy:
        return llm_policy(chat_model(base_url, retries), executor, **kwargs)

    return build


async def test_streamed_tool_call_over_http_and_recovery_from_bad_calls() -> None:
    async with (
        scripted_server(
            Reply(
                text="Let me see. ",
                tool_calls=[
                    ("turn", '{"direction": "left", "degr', "bad_json"),
                    tool_call("teleport", {"to": "Mars"}, "unknown"),
                    tool_call("broken", {}, "raises"),
                ],
            ),
            Reply(
                text="Trying again. ",
                tool_calls=[tool_call("turn", {"direction": "left", "degrees": 30}, "ok")],
            ),
            Reply(text="I turned left by thirty degrees."),
        ) as server,
        policy_stage(make(server.base_url)) as h,
    ):
        await h.hear("turn left thirty degrees")
        assert h.counter.names() == ["broken", "turn"]
        assert h.counter.calls[1] == ("turn", {"direction": "left", "degrees": 30})
        errors = server.tool_results(1)
        assert "not valid JSON" in errors["bad_json"]
        assert "no tool named 'teleport'" in errors["unknown"]
        assert "the motor is jammed" in errors["raises"]
        assert server.tool_results(2)["ok"] == "Turning left 30 degrees."
        assert h.said() == ["Let me see.", "Trying again.", "I turned left by thirty degrees."]
        offered = [t["function"]["name"] for t in server.requests[0]["tools"]]
        assert "turn" in offered
        assert "delete_everything" not in offered
        assert server.requests[0]["stream"] is True
        assert not h.events("error")


async def test_http_500_is_retried_then_reported() -> None:
    async with (
        scripted_server(
            Reply(status=500), Reply(text="Second try worked."), Reply(status=500), Reply(status=503)
        ) as server,
        policy_stage(make(server.base_url, retries=1)) as h,
    ):
        await h.hear("hello")
        assert h.said() == ["Second try worked."]
        await h.hear("hello again")
        assert h.said()[-1] == "Sorry, I cannot answer right now."
        [error] = h.events("error")
        assert "503" in error["message"] or "Service Unavailable" in error["message"]
        assert len(server.requests) == 4


async def test_a_stalled_stream_times_out_after_what_was_said() -> None:
    async with (
        scripted_server(
            Reply(text="The first sentence arrives. The second never does.", stall_after=6),
            Reply(text="Back."),
        ) as server,
        policy_stage(make(server.base_url, stream_timeout_s=0.5)) as h,
    ):
        await h.hear("tell me something")
        assert h.said() == ["The first sentence arrives.", "Sorry, I cannot answer right now."]
        [error] = h.events("error")
        assert "sent nothing for 0.5 s" in error["message"]
        await h.hear("hello")
        assert h.said()[-1] == "Back."


async def test_spoken_command_through_the_model_over_http(
    make_scene: SceneFactory, resources: Resources
) -> None:
    scene, path = make_scene(["turn left"], snr_db=25.0, seed=3)
    async with scripted_server(
        Reply(text="Okay, turning left. ", tool_calls=[tool_call("turn", {"direction": "left"}, "t1")]),
        lambda request: Reply(text=f"Done, {request['messages'][-1]['content']}"),
    ) as server:
        config = parse_config({"policy": {"model": "scripted", "base_url": server.base_url}})
        result = await run_on_file(path, config, resources=resources)
    assert result.agent.policy.name == "llm"
    assert [t["text"] for t in result.of_type("transcript")] == ["turn left"]
    user = server.requests[0]["messages"][-1]
    assert user["role"] == "user"
    assert user["content"].endswith("turn left")
    [call] = result.of_type("tool_call")
    assert (call["name"], call["args"]) == ("turn", {"direction": "left", "degrees": 90})
    [moved] = [e for e in result.of_type("actuator") if e["cause"] == "command"]
    assert (moved["name"], moved["target"], moved["source"]) == ("base", {"heading": 90.0}, "voice")
    spoken = [s["text"] for s in result.of_type("speaking_started")]
    assert spoken == ["Okay, turning left.", "Done, Turning left 90 degrees."]
    start = result.of_type("speaking_started")[0]["t"]
    assert scene.phrases[0].end < start < scene.phrases[0].end + 1.0
    assert np.sqrt(np.mean(result.voice_between(start, start + 0.3) ** 2)) > 0.01
    [latency] = [e for e in result.of_type("latency") if e["turn"] == 1]
    assert set(latency["steps_ms"]) == {"transcript", "first_token", "say", "tool_call", "first_audio"}
    assert set(latency["wall_ms"]) == set(latency["steps_ms"])
    assert not result.of_type("error")


async def test_an_unreachable_model_falls_back_to_the_offline_commands(
    make_scene: SceneFactory, resources: Resources
) -> None:
    async with scripted_server() as server:
        dead = server.base_url
    _, path = make_scene(["turn left"], snr_db=25.0, seed=3)
    config = parse_config({"policy": {"model": "gone", "base_url": dead, "probe_timeout_s": 2.0}})
    result = await run_on_file(path, config, resources=resources)
    agent: Agent = result.agent
    assert agent.policy.name == "commands"
    assert agent.policy_notice is not None
    assert "unreachable" in agent.policy_notice
    spoken = [s["text"] for s in result.of_type("speaking_started")]
    assert spoken.count(AgentConfig().policy.fallback_notice) == 1
    assert [c["name"] for c in result.of_type("tool_call")] == ["turn"]
    assert spoken[-1] == "Turning left 90 degrees."
