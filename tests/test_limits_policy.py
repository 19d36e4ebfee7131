"""Everything a model answer can do to the agent is bounded: words and time per answer (an endless
or megabyte answer over real HTTP), audio waiting for the speaker, tool calls per step and the
built-in actuators' rate (tools themselves: test_limits_tools.py). Each bound is checked together
with the agent still working meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_openai import ChatOpenAI

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig, PolicyConfig, parse_config
from avagent.agent.files import FileRun, run_on_file
from avagent.agent.resources import Resources
from avagent.core.bus import Bus
from avagent.core.events import BargeIn, Say, Transcript
from avagent.io.actuators import SimulatedBody
from avagent.io.playback import Playback
from avagent.io.speech_out import SpeechOut
from avagent.io.tts.espeak import EspeakSynthesizer
from avagent.policy.base import Actions
from avagent.policy.limits import MAX_ANSWER_CHARS, AnswerLimits, WordCounter
from avagent.policy.llm import LLMPolicy
from avagent.tools.builtin import builtin_tools
from avagent.tools.executor import RateLimit, ToolExecutor
from avagent.tools.registry import ToolRegistry, tool
from tests.conftest import SceneFactory
from tests.endless_server import Flood, flood_server
from tests.openai_server import Reply, scripted_server, tool_call
from tests.policy_support import llm_policy, policy_stage


def make(base_url: str, limits: AnswerLimits) -> Callable[[ToolExecutor], LLMPolicy]:
    def build(executor: ToolExecutor) -> LLMPolicy:
        model = ChatOpenAI(model="flood", base_url=base_url, api_key="x", max_retries=0, streaming=True)  # type: ignore[arg-type]
        return llm_policy(model, executor, limits=limits)

    return build


async def eventually(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 (the conditions have no event to wait on)
            await asyncio.sleep(0.01)


# --- one answer: words and time --------------------------------------------------------------------


async def test_a_megabyte_answer_says_at_most_the_word_limit_and_the_cut_is_remembered() -> None:
    limits = AnswerLimits(max_answer_words=40)
    async with (
        flood_server(Flood(total_chars=1_000_000, delay_s=0.002), "Fine, thank you.") as server,
        policy_stage(make(server.base_url, limits)) as h,
    ):
        await h.hear("tell me everything")
        said = h.said()
        assert said[-1] == limits.cut_notice
        assert said.count(limits.cut_notice) == 1
        words = sum(len(s.split()) for s in said[:-1])
        assert 10 <= words <= 40
        [error] = h.events("error")
        assert error["stage"] == "policy"
        assert "max_answer_words" in error["message"]
        # The stream was closed: the server stopped far short of its megabyte.
        await eventually(lambda: server.closed_early == 1)
        assert server.chars_sent < 100_000

        # The agent goes on, and the model is told honestly that its last answer was cut.
        await h.hear("how are you")
        assert h.said()[-1] == "Fine, thank you."
        [answer] = [m for m in server.messages(1) if m["role"] == "assistant"]
        assert answer["content"].startswith(said[0])
        assert limits.cut_notice in answer["content"]
        assert "cut this answer off here: the answer reached 40 words" in answer["content"]
        assert len(h.events("error")) == 1


async def test_an_endless_answer_is_cut_at_the_time_limit() -> None:
    limits = AnswerLimits(max_answer_s=1.0, max_answer_words=100_000)
    async with (
        flood_server(Flood(delay_s=0.05), "Back again.") as server,
        policy_stage(make(server.base_url, limits)) as h,
    ):
        await h.hear("talk forever")  # fails (after 10 s) if the answer does not end
        said = h.said()
        assert len(said) >= 2, "what streamed before the limit was said"
        assert said[-1] == limits.cut_notice
        assert said.count(limits.cut_notice) == 1
        [error] = h.events("error")
        assert error["stage"] == "policy"
        assert "max_answer_s" in error["message"]
        await eventually(lambda: server.closed_early == 1)
        await h.hear("hello")
        assert h.said()[-1] == "Back again."
        [answer] = [m for m in server.messages(1) if m["role"] == "assistant"]
        assert "cut this answer off here: the model took 1 s" in answer["content"]


async def test_only_the_models_own_time_counts() -> None:
    @tool
    async def survey() -> str:
        """Look around the room (takes a while)."""
        await asyncio.sleep(2.5)
        return "Two chairs and a table."

    limits = AnswerLimits(max_answer_s=2.0)
    async with (
        scripted_server(
            Reply(text="Let me look. ", tool_calls=[tool_call("survey", {}, "s1")]),
            Reply(text="I see two chairs and a table."),
        ) as server,
        policy_stage(make(server.base_url, limits), tools=[survey]) as h,
    ):
        await h.hear("what do you see")
        assert h.said() == ["Let me look.", "I see two chairs and a table."], "the tool's time is its own"
        assert not h.events("error")


async def test_text_without_spaces_is_no_way_around_the_word_limit() -> None:
    counter = WordCounter()
    for piece in ["hel", "lo wor", "ld "]:
        counter.feed(piece)
    assert counter.total == 2
    endless_word = WordCounter()
    for _ in range(100):
        endless_word.feed("x" * 10)
    assert endless_word.total == 34

    limits = AnswerLimits(max_answer_words=50)
    async with (
        scripted_server(Reply(text="x" * 300_000)) as server,
        policy_stage(make(server.base_url, limits)) as h,
    ):
        await h.hear("spell it out")
        assert h.said() == [limits.cut_notice]
        [error] = h.events("error")
        assert "max_answer_words" in error["message"]


# --- tool calls per step ---------------------------------------------------------------------------


async def test_tool_calls_beyond_the_cap_are_not_run_and_the_model_is_told() -> None:
    calls = [tool_call("turn", {"direction": "left", "degrees": 5}, f"c{i}") for i in range(300)]
    async with (
        scripted_server(Reply(text="Spinning. ", tool_calls=calls), Reply(text="Done.")) as server,
        policy_stage(make(server.base_url, AnswerLimits())) as h,
    ):
        await h.hear("spin around")
        assert h.counter.names() == ["turn"] * 8
        assert len(h.events("tool_call")) == 8
        results = server.tool_results(1)
        assert len(results) == 300, "every call gets a tool message"
        refused = [r for r in results.values() if "not run: at most 8 tool calls per step" in r]
        assert len(refused) == 292
        [error] = h.events("error")
        assert error["stage"] == "policy"
        assert "max_tool_calls_per_step" in error["message"]
        assert h.said() == ["Spinning.", "Done."]


async def test_tool_arguments_that_never_end_are_cut_and_never_run() -> None:
    huge = tool_call("turn", {"direction": "left", "degrees": 5, "note": "x" * (MAX_ANSWER_CHARS + 10)}, "c1")
    async with (
        scripted_server(Reply(text="Turning. ", tool_calls=[huge])) as server,
        policy_stage(make(server.base_url, AnswerLimits())) as h,
    ):
        await h.hear("turn left")
        assert h.counter.names() == [], "a call whose arguments were cut off never runs"
        [error] = h.events("error")
        assert "max_answer_chars" in error["message"]
        assert h.said() == ["Turning.", AnswerLimits().cut_notice]


# --- the built-in actuators' rate -------------------------------------------------------------------


async def test_the_actuators_have_rate_limits_of_their_own_that_the_config_replaces() -> None:
    tools = ToolRegistry(builtin_tools(SimulatedBody()))
    own = ToolExecutor(tools, rate_limits={"*": RateLimit(1000, 1.0)})
    turns = [await own.execute("turn", {"direction": "left", "degrees": 360}) for _ in range(6)]
    assert [o.ok for o in turns] == [True] * 5 + [False]
    assert "rate limited" in turns[-1].result
    assert not turns[-1].ran
    looks = [(await own.execute("look_at", {"azimuth_deg": 10})).ok for _ in range(11)]
    assert looks == [True] * 10 + [False]
    assert (await own.execute("what_time", {})).ok, "the other tools have no limit of their own"

    replaced = ToolExecutor(tools, rate_limits={"turn": RateLimit(100, 1.0)})
    assert all([(await replaced.execute("turn", {"direction": "right"})).ok for _ in range(6)])


# --- audio waiting for the speaker ------------------------------------------------------------------


class CountingSynth:
    """espeak-ng, counting the sentences it was asked to make."""

    name = "counting"

    def __init__(self) -> None:
        self._inner = EspeakSynthesizer()
        self.sample_rate = self._inner.sample_rate
        self.made: list[str] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def synthesize(self, text: str) -> np.ndarray:
        self.made.append(text)
        return await self._inner.synthesize(text)


def busy(speech: SpeechOut) -> bool:
    return speech.busy


LONG_ANSWER = " ".join(f"This is sentence number {i} of a very long answer." for i in range(1, 41))


async def test_synthesis_waits_while_the_speaker_holds_enough_and_a_barge_in_still_cuts() -> None:
    bus = Bus()
    playback = Playback(16000, bus.publish_nowait)
    synth = CountingSynth()
    speech = SpeechOut(bus, synth, playback, max_queued_s=8.0)
    task = asyncio.create_task(speech.run())
    try:
        await bus.publish(Say(t=0.0, text=LONG_ANSWER, turn=1))
        # Waiting for the speaker is not work in flight: the bus settles with the answer unsaid.
        async with asyncio.timeout(30):
            await bus.activity.settled()
        made = len(synth.made)
        assert 2 <= made < 10
        assert 8.0 < playback.queued_s < 8.0 + 5.0
        assert busy(speech)

        t = 0.0
        for _ in range(100):  # the speaker plays 6.4 s: room is made, synthesis goes on
            playback.pull(1024, t)
            t += 1024 / 16000
        async with asyncio.timeout(30):
            await bus.activity.settled()
        assert made < len(synth.made) < 40
        assert playback.queued_s < 8.0 + 5.0

        await bus.publish(BargeIn(t=t))
        async with asyncio.timeout(10):
            await bus.activity.settled()
        assert playback.queued_s == 0.0
        assert not busy(speech)
        cut_at = len(synth.made)
        for _ in range(100):
            playback.pull(1024, t)
        await asyncio.sleep(0.2)
        assert len(synth.made) == cut_at, "nothing of the cut answer is made after the barge-in"
    finally:
        bus.close()
        await asyncio.wait_for(task, 5.0)


class Talker:
    """Says a very long answer to every turn (a model that does not know when to stop)."""

    name = "talker"

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        await actions.say(LONG_ANSWER)


async def test_a_long_answer_on_a_file_in_lockstep_neither_piles_up_nor_deadlocks(
    make_scene: SceneFactory, resources: Resources
) -> None:
    _, path = make_scene(["what time is it"], snr_db=25.0, seed=3)
    config = parse_config({"tts": {"max_queued_s": 4.0}})
    run = FileRun(path, config, resources=resources, policy=Talker(), max_tail_s=40.0)
    queued: list[float] = []
    assert run.speaker is not None
    run.speaker.add_sink(lambda _block: queued.append(run.agent.playback.queued_s))
    async with asyncio.timeout(180):
        result = await run.run()
    assert max(queued) < 4.0 + 5.0
    spoken = result.of_type("speaking_started")
    assert len(spoken) >= 8, "synthesis went on as the speaker made room"
    assert np.abs(result.voice[-result.voice_rate :]).max() > 0.01, "still speaking when the tail ran out"


# --- the agent on a file, with a model that never stops ---------------------------------------------


async def test_a_run_on_a_file_finishes_when_the_model_never_stops(
    make_scene: SceneFactory, resources: Resources
) -> None:
    _, path = make_scene(["what time is it"], snr_db=25.0, seed=3)
    async with flood_server(Flood(delay_s=0.1)) as server:
        config = parse_config(
            {"policy": {"model": "flood", "base_url": server.base_url, "max_answer_s": 1.0}}
        )
        async with asyncio.timeout(120):
            result = await run_on_file(path, config, resources=resources, max_tail_s=60.0)
        await eventually(lambda: server.closed_early == 1)
    notice = config.policy.cut_notice
    said = [s["text"] for s in result.of_type("say")]
    assert said.count(notice) == 1
    assert said[-1] == notice
    errors = [e for e in result.of_type("error") if e["stage"] == "policy"]
    assert len(errors) == 1
    assert "max_answer_s" in errors[0]["message"]
    assert notice in [s["text"] for s in result.of_type("speaking_started")], "and it was heard"


# --- wiring -----------------------------------------------------------------------------------------


def test_the_limits_keep_the_names_and_defaults_of_the_config() -> None:
    section: dict[str, Any] = {n: f.default for n, f in PolicyConfig.model_fields.items()}
    for field in dataclasses.fields(AnswerLimits):
        assert section[field.name] == field.default, field.name
    assert ToolExecutor(ToolRegistry()).sync_workers.size == AgentConfig().tools.sync_workers


def test_the_builder_passes_the_limits_on(resources: Resources) -> None:
    config = parse_config(
        {
            "policy": {
                "model": "some-model",
                "base_url": "http://127.0.0.1:9/v1",
                "max_answer_words": 120,
                "max_answer_s": 12.5,
                "cut_notice": "Enough.",
                "max_tool_calls_per_step": 3,
            },
            "tts": {"max_queued_s": 7.5},
            "tools": {"sync_workers": 2},
        }
    )
    parts = Agent(config, resources=resources).parts
    policy = parts.policy_runner.policy
    assert isinstance(policy, LLMPolicy)
    assert policy.limits == AnswerLimits(
        max_answer_words=120, max_answer_s=12.5, cut_notice="Enough.", max_tool_calls_per_step=3
    )
    assert parts.speech_out.max_queued_s == 7.5
    assert parts.executor.sync_workers.size == 2
    assert not parts.executor.sync_workers.running
