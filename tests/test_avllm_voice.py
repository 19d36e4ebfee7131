"""Spoken answers straight from an omni model (``policy.model_output: text,audio``): the server's
audio is played instead of synthesising the text, through the same playback, so a barge-in cuts
it and the memory keeps what was heard; audio that cannot be played is reported and the text is
spoken instead."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from avagent.agent.config import parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.core.events import Say
from avagent.perception.avllm.senses import AgentSenses
from avagent.policy.base import Policy
from avagent.policy.llm import LLMPolicy
from avagent.policy.memory import INTERRUPTION_NOTE, ConversationMemory
from avagent.policy.omni import ModelVoice, VoiceSettings
from avagent.tools.executor import ToolExecutor
from tests.avllm_support import chat_model, media_policy
from tests.conftest import SceneFactory
from tests.omni_server import Answer, omni_server, tone_wav
from tests.test_wiring import assert_published_as_declared


def speaking(base_url: str) -> Callable[[ToolExecutor, AgentSenses], Policy]:
    def make(executor: ToolExecutor, senses: AgentSenses) -> Policy:
        voice = ModelVoice(VoiceSettings(model="omni", base_url=base_url, voice="verse"))
        return LLMPolicy(chat_model(base_url), executor, memory=ConversationMemory(20, 3000), voice=voice)

    return make


def loudest_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    return float(np.fft.rfftfreq(audio.shape[0], 1.0 / rate)[int(np.argmax(spectrum))])


async def test_the_answers_audio_comes_with_its_text_from_either_choice() -> None:
    async with (
        omni_server(
            Answer(text="Hello there.", audio=tone_wav(0.8)),
            Answer(text="It is noon.", audio=tone_wav(0.5, rate=16000), audio_in_first_choice=True),
            Answer(text="No voice this time."),
        ) as server,
        media_policy(speaking(server.base_url)) as h,
    ):
        await h.say_turn("hello", 1.0, 2.0)
        await h.say_turn("what time is it", 3.0, 4.0)
        await h.say_turn("and now", 5.0, 6.0)
    request = server.seen[0].body
    assert request["modalities"] == ["text", "audio"]
    assert request["audio"] == {"voice": "verse", "format": "wav"}
    assert request["stream"] is False
    says = [e for e in h.recorder.events if isinstance(e, Say)]
    assert [s.text for s in says] == ["Hello there.", "It is noon.", "No voice this time."]
    assert says[0].audio is not None
    assert says[0].audio_rate == 24000
    assert says[0].audio.shape[0] == int(0.8 * 24000)
    assert abs(loudest_hz(says[0].audio, 24000) - 440.0) < 5.0
    assert says[1].audio is not None, "OpenAI's shape: content null, the transcript is the text"
    assert says[1].audio_rate == 16000
    assert says[2].audio is None, "no audio: the text is synthesised"
    assert not h.events("error")


async def test_audio_that_is_not_a_sound_file_is_reported_and_the_text_is_spoken() -> None:
    async with (
        omni_server(
            Answer(text="Plain words. Two sentences.", audio=b"RIFF but not a wave at all")
        ) as server,
        media_policy(speaking(server.base_url)) as h,
    ):
        await h.say_turn("hello", 1.0, 2.0)
    says = [e for e in h.recorder.events if isinstance(e, Say)]
    assert [s.text for s in says] == ["Plain words.", "Two sentences."]
    assert all(s.audio is None for s in says)
    [error] = h.events("error")
    assert "voice was not played" in error["message"]


async def test_omni_failures_are_errors_and_the_next_turn_is_answered() -> None:
    async with (
        omni_server(
            Answer(raw=b"{not json"), Answer(status=503), Answer(text="Fine.", audio=tone_wav(0.3))
        ) as server,
        media_policy(speaking(server.base_url)) as h,
    ):
        await h.say_turn("one", 1.0, 2.0)
        await h.say_turn("two", 3.0, 4.0)
        await h.say_turn("three", 5.0, 6.0)
    assert h.said() == ["Sorry, I cannot answer right now."] * 2 + ["Fine."]
    errors = [e["message"] for e in h.events("error")]
    assert len(errors) == 2
    assert "did not answer with JSON" in errors[0]
    assert "HTTP 503" in errors[1]


@pytest.mark.slow
async def test_the_models_voice_is_heard_and_a_barge_in_cuts_it_like_the_agents_own(
    make_scene: SceneFactory, resources: Resources
) -> None:
    scene, path = make_scene(["what time is it", "turn left"], snr_db=25.0, seed=5, gap_s=2.5)
    long_answer = "One two three four five six seven eight nine ten eleven twelve."
    async with omni_server(
        Answer(text=long_answer, audio=tone_wav(8.0)), Answer(text="Turning.", audio=tone_wav(0.6, hz=660.0))
    ) as server:
        config = parse_config(
            {"policy": {"model": "omni", "base_url": server.base_url, "model_output": "text,audio"}}
        )
        result = await run_on_file(path, config, resources=resources)
    assert not server.problems
    started = result.of_type("speaking_started")
    assert [s["text"] for s in started] == [long_answer, "Turning."]
    first = started[0]["t"]
    heard = result.voice_between(first + 0.1, first + 0.6)
    assert abs(loudest_hz(heard, result.voice_rate) - 440.0) < 10.0, "the model's own voice, not espeak"
    [cut] = [e for e in result.of_type("speaking_ended") if e["interrupted"]]
    assert cut["text"] == long_answer
    assert 0.5 < cut["played_s"] < cut["total_s"]
    barge = result.of_type("barge_in")[0]["t"]
    assert scene.phrases[1].start < barge < scene.phrases[1].start + 0.8
    after = result.voice_between(barge + 0.1, scene.phrases[1].end)
    assert float(np.sqrt(np.mean(after**2))) < 1e-3, "silent from the barge-in on"
    history = server.seen[1].body["messages"]
    assistant = next(m for m in history if m["role"] == "assistant")
    assert assistant["content"].endswith(INTERRUPTION_NOTE)
    kept = assistant["content"].removesuffix(INTERRUPTION_NOTE).split()
    assert 0 < len(kept) < len(long_answer.split()), "what was heard of it, no more"
    assert long_answer.startswith(" ".join(kept))
    assert not result.of_type("error")
    assert_published_as_declared([result.source, *result.agent.stages], result.events)
