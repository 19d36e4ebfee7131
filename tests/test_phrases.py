"""Spoken command phrases: grammar generation and matching recognised text back to tool calls."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import Field

from avagent.agent.config import AgentConfig
from avagent.agent.resources import default_tools
from avagent.io.actuators import SimulatedBody
from avagent.tools.phrases import CommandPhrases, Spoken, normalise, number_words
from avagent.tools.registry import tool


@pytest.fixture(scope="module")
def phrases() -> CommandPhrases:
    return CommandPhrases(default_tools(AgentConfig(), SimulatedBody()))


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (7, "seven"), (15, "fifteen"), (40, "forty"), (45, "forty five"), (100, "one hundred"),
     (120, "one hundred twenty"), (305, "three hundred five"), (999, "nine hundred ninety nine")],
)  # fmt: skip
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


def test_normalise_keeps_words_and_digits_only() -> None:
    assert normalise("  Turn LEFT, 90°!  ") == "turn left 90 degrees"


@pytest.mark.parametrize(
    ("text", "tool", "args"),
    [
        ("turn left", "turn", {"direction": "left"}),
        ("turn right forty five degrees", "turn", {"direction": "right", "degrees": 45}),
        ("look at two hundred seventy degrees", "look_at", {"azimuth_deg": 270}),
        ("what time is it", "what_time", {}),
        ("stop moving", "stop", {}),
        ("say good morning", "say", {"text": "good morning"}),
    ],
)
def test_whole_phrases_match_with_their_arguments(
    phrases: CommandPhrases, text: str, tool: str, args: dict[str, object]
) -> None:
    match = phrases.match(text, exact=True)
    assert match is not None
    assert (match.tool, match.args) == (tool, args)


def test_free_text_from_a_general_recogniser_matches_inside_a_sentence(phrases: CommandPhrases) -> None:
    match = phrases.match("Could you please turn right 45 degrees?")
    assert match is not None
    assert (match.tool, match.args) == ("turn", {"direction": "right", "degrees": 45})
    assert phrases.match("Could you please turn right 45 degrees?", exact=True) is None


def test_text_that_asks_for_nothing_matches_nothing(phrases: CommandPhrases) -> None:
    assert phrases.match("open the window please") is None
    assert phrases.match("") is None
    assert phrases.match("turn left five", exact=True) is None, "a grammar path that did not finish"


def test_the_grammar_holds_every_phrase_and_only_spoken_numbers(phrases: CommandPhrases) -> None:
    jsgf = phrases.jsgf()
    assert jsgf.startswith("#JSGF V1.0;")
    assert "public <command> =" in jsgf
    assert "forty five" in jsgf
    assert "forty three" not in jsgf, "turn and look_at are spoken in steps of five"
    assert {"turn", "left", "degrees", "morning"} <= phrases.words()


def test_slot_vocabulary_comes_from_the_argument_type() -> None:
    @tool(phrases=["set {mode} mode", "wait {seconds} seconds"])
    def configure(
        mode: Literal["quiet", "normal"] = "normal",
        seconds: Annotated[int, Field(ge=10, le=30), Spoken(step=10)] = 10,
    ) -> str:
        """Configure."""
        return mode

    p = CommandPhrases([configure])
    grammar = p.jsgf()
    assert "quiet | normal" in grammar
    assert "ten | twenty | thirty" in grammar
    match = p.match("wait twenty seconds", exact=True)
    assert match is not None
    assert match.args == {"seconds": 20}


def test_an_unspeakable_argument_is_refused_with_a_reason() -> None:
    @tool(phrases=["note {text}"])
    def note(text: str) -> str:
        """Take a note."""
        return text

    with pytest.raises(ValueError, match="cannot be spoken"):
        CommandPhrases([note])

    @tool(phrases=["do {missing}"])
    def act() -> str:
        """Act."""
        return ""

    with pytest.raises(ValueError, match="unknown argument"):
        CommandPhrases([act])
