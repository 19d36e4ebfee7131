"""Offline commands users can trust: recognised across voices, accents and noises, never made out of
other speech, and "stop" acted on before the turn ends. Synthesised voices and noises with known
truth (avagent/sim/command_matrix.py; bench/hearing.py runs the full matrix)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from avagent.agent.config import AgentConfig
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources, default_tools
from avagent.core.errors import ConfigError
from avagent.io.actuators import SimulatedBody
from avagent.perception.asr.base import Recognition
from avagent.perception.asr.checked import CheckedRecognizer, combine
from avagent.sim import command_matrix as matrix
from avagent.tools.phrases import CommandPhrases
from tests.conftest import SceneFactory

pytest.importorskip("faster_whisper", reason="checking commands needs the whisper extra")

CHECKED = {"hearing": {"check_commands": "whisper", "spot_urgent": True}}


@pytest.fixture(scope="module")
def phrases() -> CommandPhrases:
    return CommandPhrases(default_tools(AgentConfig(), SimulatedBody()))


@pytest.fixture(scope="module")
def checked() -> Iterator[Resources]:
    """Resources whose recogniser is the grammar checked by whisper."""
    shared = Resources(AgentConfig.model_validate(CHECKED))
    asyncio.run(shared.start())
    yield shared
    asyncio.run(shared.stop())


def acted_on(phrases: CommandPhrases, result: Recognition, min_confidence: float = 0.75) -> str | None:
    """The phrase the offline command policy would carry out, or None."""
    if result.confidence is not None and result.confidence < min_confidence:
        return None
    return result.text if phrases.match(result.text, exact=True) else None


def test_free_speech_is_put_into_the_grammar_s_words(phrases: CommandPhrases) -> None:
    assert phrases.spoken("Turn left, 90 degrees.") == "turn left ninety degrees"
    assert phrases.spoken("What's the time?") == "what is the time"
    assert phrases.spoken("Stop!") == "stop"
    assert phrases.spoken("Look at 180°.") == "look at one hundred eighty degrees"
    assert phrases.spoken("Stop by the bakery.") is None
    assert phrases.spoken("turn the radio on") is None
    assert phrases.urgent == ("stop", "stop moving")


def test_a_grammar_match_counts_only_when_free_speech_agrees(phrases: CommandPhrases) -> None:
    def decide(heard: Recognition, said: Recognition) -> Recognition:
        return combine(heard, said, phrases.spoken, alone=0.9, grammar_alone=0.5, min_similarity=0.65)

    agree = decide(Recognition("turn left", 0.8), Recognition("Turn left."))
    assert agree == Recognition("turn left", 1.0)
    # Whisper heard a phrase the grammar got wrong ("ninety" taken for "twenty").
    free_only = decide(Recognition("turn left twenty degrees", 0.9), Recognition("Turn left 90 degrees"))
    assert free_only == Recognition("turn left ninety degrees", 0.9)
    # Whisper mishears the voice, but what it wrote is close to the grammar's phrase.
    close = decide(Recognition("what time is it", 0.8), Recognition("What time in it?"))
    assert close == Recognition("what time is it", 0.9)
    # Whisper, told to expect "Turn left.", stopped there; the grammar heard the rest.
    longer = decide(Recognition("turn left ninety degrees", 0.9), Recognition("Turn left."))
    assert longer == Recognition("turn left ninety degrees", 0.9)
    # By default a phrase only the grammar heard is never acted on, however alike whisper's words.
    alike = combine(Recognition("what time is it", 0.97), Recognition("What time in it?"), phrases.spoken)
    assert alike.confidence is not None
    assert alike.confidence < 0.75
    # Other speech forced onto the grammar: below the policy's threshold.
    forced = decide(Recognition("what time is it", 0.97), Recognition("Where are my keys?"))
    assert forced.text == "what time is it"
    assert forced.confidence is not None
    assert forced.confidence < 0.75
    assert decide(Recognition("what", 1.0), Recognition("What a mess.")) == Recognition("What a mess.", 0.0)


SMALL_MATRIX = matrix.command_specs(
    voices=("en-gb-x-rp", "en-us+f3"),
    noises=("babble", "music"),
    snrs=(10.0, 20.0),
    commands=("stop", "turn left", "what time is it", "look at ninety degrees"),
)


async def test_commands_are_recognised_across_voices_and_noises(
    checked: Resources, phrases: CommandPhrases
) -> None:
    utterances = matrix.synthesize(SMALL_MATRIX, seed=5)
    right: list[matrix.Utterance] = []
    another = []
    for u in utterances:
        result = await checked.recognizer.transcribe(u.audio, 16000)
        acted = acted_on(phrases, result)
        if acted == u.text:
            right.append(u)
        elif acted is not None:
            another.append((u.text, u.voice, u.noise, u.snr_db, result))
    # Measured: 29 of 32, the three lost in babble at 10 dB (answered with "sorry"); the target is
    # 99 %, not met yet (bench/hearing.py has the full matrix).
    assert len(right) >= 0.85 * len(utterances)
    assert len(another) <= 1, another
    assert sum(u.noise == "music" for u in right) == sum(u.noise == "music" for u in utterances)


async def test_other_speech_moves_nothing(checked: Resources, phrases: CommandPhrases) -> None:
    # Half-commands: sentences that begin like a command.
    sentences = [s for s in matrix.OTHER_TEST if s.split()[0] in {"turn", "look", "say", "stop", "what"}]
    utterances = matrix.synthesize(matrix.other_specs(sentences[::2], len(sentences[::2])), seed=6)
    recognizer = checked.recognizer
    assert isinstance(recognizer, CheckedRecognizer)
    moved, moved_by_grammar = [], []
    for u in utterances:
        result = await recognizer.transcribe(u.audio, 16000)
        if acted_on(phrases, result) is not None:
            moved.append((u.text, u.voice, u.noise, result))
        if acted_on(phrases, await recognizer.grammar.transcribe(u.audio, 16000)) is not None:
            moved_by_grammar.append(u.text)
    # The grammar alone moves 2 of these 11 ("turn on the lights" as "turn right", "stop and think"
    # as "stop moving"); checked, 1 ("what a mess" in babble at 15 dB, which whisper, told to expect
    # commands, hears as "What time is it."). The benchmark measures 300.
    assert len(moved_by_grammar) >= 2
    assert len(moved) <= 1, moved


async def test_stop_halts_before_the_turn_ends_and_other_speech_moves_nothing(
    make_scene: SceneFactory, checked: Resources
) -> None:
    said = ["turn left", "turn the radio on", "stop"]
    scene, path = make_scene(said, voice="en-gb", gap_s=3.0, snr_db=15.0, noise_kind="pink", seed=7)
    result = await run_on_file(path, AgentConfig.model_validate(CHECKED), resources=checked)
    calls = [c["name"] for c in result.of_type("tool_call")]
    assert calls == ["turn", "stop"]
    stop_phrase = scene.phrases[-1]
    spotted = [s for s in result.of_type("stop") if s["t"] > stop_phrase.start]
    turn_ends = [t["t"] for t in result.of_type("turn_ended") if t["t"] > stop_phrase.start]
    assert spotted
    assert turn_ends
    # The stop came at the pause, while the turn's end-of-turn silence was still running.
    assert spotted[0]["t"] < turn_ends[0]
    assert not result.of_type("error")


def test_a_checker_without_its_model_is_a_config_error(tmp_path: Path) -> None:
    config = AgentConfig.model_validate(
        {"hearing": {"check_commands": "whisper"}, "asr": {"whisper": {"model": str(tmp_path / "none")}}}
    )
    with pytest.raises(ConfigError, match=r"hearing\.check_commands"):
        Resources(config)
