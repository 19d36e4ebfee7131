"""A multimodal model on this machine (``avagent[local]``): a tiny, randomly initialised
Qwen2.5-Omni thinker built offline goes through the real loading, preprocessing and generation
code on the CPU, as the policy's model and as the scene describer's; the tool calls a local model
writes become tool calls, never words."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from avagent.agent.agent import Agent
from avagent.agent.config import parse_config
from avagent.agent.resources import Resources
from avagent.core.errors import ConfigError
from avagent.perception.avllm.encoding import encode_jpeg
from avagent.perception.avllm.local_chat import LocalChatModel, LocalModelSettings, ToolCallText, request_for
from avagent.perception.avllm.senses import AgentSenses
from avagent.policy.base import Policy
from avagent.policy.inputs import ModelInputs
from avagent.policy.llm import LLMPolicy
from avagent.policy.memory import ConversationMemory
from avagent.policy.scene import SceneDescriber
from avagent.sim.faces import scene
from avagent.sim.tiny_omni import build_tiny_omni
from avagent.tools.executor import ToolExecutor
from tests.avllm_support import media_policy


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_omni(tmp_path_factory.mktemp("tiny") / "omni")


def wav_bytes(seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def test_blocks_become_the_processors_conversation_with_pictures_and_16_khz_sound() -> None:
    image = encode_jpeg(scene([(320, 240, 110, 0.0)]), 0.0, max_side=200, quality=80)
    audio = base64.b64encode(wav_bytes(0.5, 48000)).decode()
    request = request_for(
        [
            SystemMessage("Be brief."),
            HumanMessage(
                content=[
                    {"type": "text", "text": "what is this"},
                    {"type": "image", "base64": image.base64, "mime_type": "image/jpeg"},
                    {"type": "audio", "base64": audio, "mime_type": "audio/wav"},
                ]
            ),
            AIMessage(content="", tool_calls=[{"name": "turn", "args": {"direction": "left"}, "id": "c1"}]),
        ]
    )
    system, user, assistant = request.conversation
    assert system == {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}
    assert [p["type"] for p in user["content"]] == ["text", "image", "audio"]
    [picture] = request.images
    assert picture.size == (200, 150)
    [sound] = request.audio
    assert sound.shape[0] == 8000, "resampled to 16 kHz"
    assert (
        assistant["content"][0]["text"]
        == '<tool_call>{"name": "turn", "arguments": {"direction": "left"}}</tool_call>'
    )


def test_tool_calls_in_the_text_are_held_back_and_given_as_calls() -> None:
    calls = ToolCallText()
    pieces = [
        "Sure. <tool",
        '_call>{"name": "turn", "argu',
        'ments": {"direction": "left"}}</tool_call> Done',
        ".",
    ]
    chunks = [c for p in pieces for c in calls.feed(p)] + list(calls.feed("", final=True))
    said = "".join(c.text for c in chunks)
    assert said == "Sure.  Done."
    [call] = [tc for c in chunks for tc in c.tool_call_chunks]
    assert call["name"] == "turn"
    assert call["args"] == '{"direction": "left"}'
    broken = ToolCallText()
    [cut] = list(broken.feed('<tool_call>{"name": "turn", "arguments": {"dir', final=True))
    assert cut.tool_call_chunks[0]["name"] == ""
    assert str(cut.tool_call_chunks[0]["args"]).startswith('{"name"'), "an unclosed call fails as JSON"


async def test_the_tiny_model_streams_an_answer_to_a_picture_and_a_sound(tiny_model: Path) -> None:
    model = LocalChatModel.for_settings(LocalModelSettings(path=str(tiny_model), max_new_tokens=6))
    await model.start()
    try:
        image = encode_jpeg(scene([(320, 240, 110, 0.0)]), 0.0, max_side=256, quality=75)
        audio = base64.b64encode(wav_bytes(1.0, 16000)).decode()
        message = HumanMessage(
            content=[
                {"type": "text", "text": "what do you see"},
                {"type": "image", "base64": image.base64, "mime_type": "image/jpeg"},
                {"type": "audio", "base64": audio, "mime_type": "audio/wav"},
            ]
        )
        pieces = [chunk.text async for chunk in model.astream([message])]
        assert model.runner.last_tokens == 6, "the real generation, to max_new_tokens"
        assert "".join(pieces), "decoded text, streamed"
        long = LocalChatModel.for_settings(LocalModelSettings(path=str(tiny_model), max_new_tokens=1500))
        stream = long.astream("hello").__aiter__()
        await stream.__anext__()
        await stream.aclose()  # type: ignore[attr-defined]
        assert await asyncio.to_thread(long.runner.wait_until_idle, 30.0)
        assert long.runner.last_tokens < 1500, "closing the stream stops the generation"
    finally:
        await model.stop()


def local(model: LocalChatModel) -> Callable[[ToolExecutor, AgentSenses], Policy]:
    def make(executor: ToolExecutor, senses: AgentSenses) -> Policy:
        return LLMPolicy(
            model,
            executor,
            memory=ConversationMemory(20, 3000),
            inputs=ModelInputs(("text", "image", "audio"), senses),
        )

    return make


async def test_the_policy_and_the_scene_describer_run_on_the_local_model(tiny_model: Path) -> None:
    model = LocalChatModel.for_settings(LocalModelSettings(path=str(tiny_model), max_new_tokens=8))
    async with media_policy(local(model)) as h:
        await h.start_speaking(1.0)
        await h.show(scene([(320, 240, 110, 0.0)]), 1.1)
        await h.end_turn("what do you see", 1.0, 2.0)
        describer = SceneDescriber(h.bus, h.senses, model)
        answer = await describer.describe_scene("what do you see")
    assert model.runner.last_tokens == 8
    assert not h.events("error")
    assert len(h.events("first_token")) == 1, "the policy streamed the local model's answer"
    assert answer, "the describer's answer is the model's"
    assert model.runner.loaded


def test_a_local_model_is_wired_from_the_config_and_checked_first(tiny_model: Path, tmp_path: Path) -> None:
    config = parse_config(
        {
            "policy": {"model": f"transformers:{tiny_model}", "model_input": "text,image"},
            "avllm": {"backend": "transformers", "model": str(tiny_model), "tools": True},
        }
    )
    resources = Resources(config)
    agent = Agent(config, resources=resources)
    policy = agent.policy
    assert isinstance(policy, LLMPolicy)
    assert isinstance(policy.model, LocalChatModel)
    assert not agent.parts.check_model, "a local model is not probed over a network"
    describer = next(s for s in agent.stages if isinstance(s, SceneDescriber))
    assert describer.model is policy.model, "one model in memory serves both"
    assert not policy.model.runner.loaded, "nothing loads before the agent runs"
    with pytest.raises(ConfigError, match="is not a model folder"):
        Agent(parse_config({"policy": {"model": f"transformers:{tmp_path}"}}), resources=resources)
    with pytest.raises(ConfigError, match="transformers backend needs model"):
        parse_config({"avllm": {"backend": "transformers"}})
