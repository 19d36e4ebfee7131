"""The spoken wake word: only turns that call the agent by name are acted on, safety words always."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from avagent.agent.config import AgentConfig, load_config
from avagent.agent.files import run_on_file
from avagent.agent.hearing import urgent_spotters
from avagent.agent.resources import Resources, default_tools
from avagent.core.bus import Bus
from avagent.core.errors import ConfigError
from avagent.io.actuators import SimulatedBody
from avagent.perception.spotting import UrgentSpotter
from avagent.policy.wake import WakeWord
from avagent.sim.scripted_model import scripted
from avagent.tools.phrases import CommandPhrases
from tests.conftest import SceneFactory
from tests.policy_support import llm_policy, policy_stage


def robot(window_s: float = 8.0) -> WakeWord:
    return WakeWord("robot", urgent=["stop"], window_s=window_s)


def test_a_turn_that_starts_with_the_name_is_acted_on_without_it() -> None:
    assert robot().accepts("robot turn left", 1.0) == "turn left"


@pytest.mark.parametrize(
    ("heard", "rest"),
    [
        ("Robot, turn left.", "turn left."),
        ("ROBOT! What time is it?", "What time is it?"),
        ("  robot...  stop", "stop"),
        ("Robot", ""),
    ],
)
def test_punctuation_and_case_from_a_free_speech_recogniser(heard: str, rest: str) -> None:
    assert robot().accepts(heard, 1.0) == rest


def test_a_turn_without_the_name_is_ignored() -> None:
    wake = robot()
    assert wake.accepts("turn left", 1.0) is None
    assert wake.accepts("robots turn left", 2.0) is None, "a word that begins with the name is not it"
    assert wake.accepts("turn left robot", 3.0) is None, "the name must come first"


def test_an_urgent_phrase_is_acted_on_without_the_name() -> None:
    wake = robot()
    assert wake.accepts("Stop.", 1.0) == "Stop."
    assert wake.accepts("stop turning left", 2.0) is None, "only a turn that is exactly the safety word"
    assert wake.accepts("turn left", 3.0) is None, "a safety word opens no conversation"


def test_a_name_of_several_words() -> None:
    wake = WakeWord("Hey Robot", window_s=0.0)
    assert wake.accepts("hey, robot: turn left", 1.0) == "turn left"
    assert wake.accepts("robot turn left", 2.0) is None


def test_the_follow_up_window_runs_in_media_time_from_the_end_of_the_answer() -> None:
    wake = robot(window_s=8.0)
    assert wake.accepts("robot turn left", 10.0) == "turn left"
    # A long answer: a turn long after the command but while it is being answered is accepted.
    wake.answer_ended(25.0)
    assert wake.accepts("turn right", 32.5) == "turn right", "within 8 s of the answer's end"
    wake.answer_ended(34.0)
    assert wake.accepts("what time is it", 41.9) == "what time is it", "each answer extends it"
    wake.answer_ended(43.0)
    assert wake.accepts("turn left", 51.5) is None, "8.5 s after the last answer ended"
    assert wake.accepts("robot turn left", 52.0) == "turn left"


def test_the_agent_speaking_unasked_opens_no_window() -> None:
    wake = robot(window_s=8.0)
    wake.answer_ended(5.0)
    assert wake.accepts("turn left", 6.0) is None


def test_no_window_when_it_is_zero() -> None:
    wake = robot(window_s=0.0)
    assert wake.accepts("robot turn left", 1.0) == "turn left"
    wake.answer_ended(2.0)
    assert wake.accepts("turn left", 2.5) is None


@pytest.mark.parametrize("name", ["", "robot 2", "r2-d2", "hey there little robot", "robot\n!"])
def test_a_bad_name_is_a_one_line_config_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1-3 words of letters only"):
        WakeWord(name)
    path = tmp_path / "wake.yaml"
    path.write_text(f"hearing:\n  wake_word: {name!r}\n")
    with pytest.raises(ConfigError, match=r"hearing\.wake_word: .*1-3 words of letters only") as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_the_grammar_takes_commands_with_the_name_before_them_or_without() -> None:
    config = AgentConfig.model_validate({"hearing": {"wake_word": "Robot"}})
    assert config.hearing.wake_word == "robot"
    phrases = CommandPhrases(default_tools(config, SimulatedBody()), ["yes"], name="robot")
    grammar = phrases.jsgf()
    assert "public <command> = ( [ robot ] ( ( turn <" in grammar
    assert "( say <say_text_7> ) ) ) | ( yes );" in grammar, "no name before an answer"
    assert "robot" in phrases.words()
    # A free-speech recogniser's words put into the grammar's, the name kept.
    assert phrases.spoken("Robot, turn right 45 degrees.") == "robot turn right forty five degrees"
    assert phrases.spoken("turn left") == "turn left"
    assert "robot" not in CommandPhrases(default_tools(config, SimulatedBody())).jsgf()


async def test_the_model_is_asked_only_about_named_turns_and_never_sees_the_name() -> None:
    model = scripted("Hello there.")
    async with policy_stage(lambda ex: llm_policy(model, ex, wake=robot(window_s=0.0))) as h:
        await h.hear("what is the weather in Paris")
        assert model.requests == [], "not addressed to the agent: the model is not asked"
        assert h.said() == []
        await h.hear("Robot, hello.")
        assert h.said() == ["Hello there."]
        assert len(model.requests) == 1
        assert str(model.requests[0][0][-1].content).endswith("\nhello.")
    assert [e["text"] for e in h.events("transcript")] == ["what is the weather in Paris", "Robot, hello."]


WAKE = AgentConfig.model_validate({"hearing": {"wake_word": "robot", "wake_window_s": 1.0}})


@pytest.fixture(scope="module")
def wake_resources() -> Iterator[Resources]:
    """The offline recogniser with the name in its grammar."""
    shared = Resources(WAKE)
    asyncio.run(shared.start())
    yield shared
    asyncio.run(shared.stop())


def test_the_safety_word_spotter_hears_stop_after_the_name_too(wake_resources: Resources) -> None:
    hearing = WAKE.hearing.model_copy(update={"spot_urgent": True})
    (spotter,) = urgent_spotters(hearing, Bus(), wake_resources.recognizer, wake_resources.phrases)
    assert isinstance(spotter, UrgentSpotter)
    assert {"stop", "robot stop"} <= spotter._urgent


async def test_only_named_turns_and_safety_words_move_the_robot(
    make_scene: SceneFactory, wake_resources: Resources
) -> None:
    # 3.5 s apart: each turn comes after the 1 s follow-up window of the answer before it closed.
    said = ["turn left", "robot turn left", "turn right", "stop"]
    _, path = make_scene(said, gap_s=3.5, snr_db=20.0, seed=11)
    body = SimulatedBody()
    result = await run_on_file(path, WAKE, resources=wake_resources, body=body)

    assert [t["text"] for t in result.of_type("transcript")] == said, "every turn is still heard"
    calls = [(c["name"], c["args"]) for c in result.of_type("tool_call")]
    assert calls == [("turn", {"direction": "left", "degrees": 90}), ("stop", {})]
    assert body.stops == 1
    spoken = [s["text"] for s in result.of_type("speaking_started")]
    assert spoken == ["Turning left 90 degrees.", "Stopping."], "ignored turns get no answer"
    assert not result.of_type("error")


async def test_a_turn_soon_after_the_answer_needs_no_name(
    make_scene: SceneFactory, wake_resources: Resources
) -> None:
    config = WAKE.model_copy(update={"hearing": WAKE.hearing.model_copy(update={"wake_window_s": 8.0})})
    _, path = make_scene(["robot what time is it", "turn left"], gap_s=3.5, snr_db=20.0, seed=12)
    result = await run_on_file(path, config, resources=wake_resources)

    assert [c["name"] for c in result.of_type("tool_call")] == ["what_time", "turn"]
    assert not result.of_type("error")
