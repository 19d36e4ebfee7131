"""Offline commands users can trust: recognised across voices, accents and noises, never made out of
other speech, and "stop" acted on before the turn ends. Synthesised voices and noises with known
truth (avagent/sim/command_matrix.py; bench/hearing.py runs the full matrix)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import numpy as np
import pytest
from pydantic import Field

from avagent.agent.config import AgentConfig
from avagent.agent.files import run_on_file
from avagent.agent.hearing import checked_recognizer
from avagent.agent.resources import Resources, default_tools
from avagent.core.bus import Bus
from avagent.core.errors import ConfigError
from avagent.core.events import Stop, Transcript, TurnEnded
from avagent.io.actuators import SimulatedBody
from avagent.perception.asr import whisper_scoring
from avagent.perception.asr.base import Recognition
from avagent.perception.asr.checked import UNSURE, CheckedRecognizer, decide
from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer
from avagent.perception.asr.stage import Transcriber
from avagent.perception.asr.whisper_scoring import CommandScorer, Scored, Written
from avagent.policy import commands
from avagent.sim import command_matrix as matrix
from avagent.tools.phrases import CommandPhrases
from avagent.tools.registry import tool
from avagent.tools.written import written_commands
from tests.conftest import SceneFactory

pytest.importorskip("faster_whisper", reason="checking commands needs the whisper extra")

CHECKED = {"hearing": {"check_commands": "whisper", "spot_urgent": True}}


@pytest.fixture(scope="module")
def phrases() -> CommandPhrases:
    return CommandPhrases(default_tools(AgentConfig(), SimulatedBody()))


@pytest.fixture(scope="module")
def checked() -> Iterator[Resources]:
    """Resources whose recogniser is whisper scoring the commands (the grammar kept for spotting)."""
    shared = Resources(AgentConfig.model_validate(CHECKED))
    asyncio.run(shared.start())
    yield shared
    asyncio.run(shared.stop())


def acted_on(phrases: CommandPhrases, result: Recognition) -> str | None:
    """The phrase the offline command policy would carry out, or None."""
    return commands.acted_on(phrases, result.text, result.confidence, AgentConfig().policy.min_confidence)


def test_free_speech_is_put_into_the_grammar_s_words(phrases: CommandPhrases) -> None:
    assert phrases.spoken("Turn left, 90 degrees.") == "turn left ninety degrees"
    assert phrases.spoken("What's the time?") == "what is the time"
    assert phrases.spoken("Stop!") == "stop"
    assert phrases.spoken("Look at 180°.") == "look at one hundred eighty degrees"
    assert phrases.spoken("Stop by the bakery.") is None
    assert phrases.spoken("turn the radio on") is None
    assert phrases.urgent == ("stop", "stop moving")


def test_the_scored_command_decides_and_the_prompted_transcript_is_a_second_way_in_for_stop(
    phrases: CommandPhrases,
) -> None:
    def decided(
        text: str, command: str | None, margin: float | None, grammar: Recognition | None = None
    ) -> Recognition:
        scored = Scored(text, command, margin)
        return decide(scored, phrases.spoken, 0.75, urgent=phrases.urgent, grammar=grammar, agreed_margin=2.0)

    # Whisper's transcript went astray, but the command it scores is close enough to it.
    assert decided("It's not.", "stop", -0.4) == Recognition("stop", 1.0)
    longer = decided("Turn left.", "turn left ninety degrees", 0.3)
    assert longer == Recognition("turn left ninety degrees", 1.0)
    # Far below the transcript: other speech ("the left door is locked").
    other = decided("The left door is locked.", "turn left", -2.1)
    assert other == Recognition("The left door is locked.", 0.0)
    # Just below: unsure (a tool that asks first is asked about; anything else gets "sorry").
    assert decided("Turn the page.", "turn left", -1.2) == Recognition("turn left", UNSURE)
    # The prompted transcript counts when it is a safety phrase, whole: "stop" is never lost...
    assert decided("Stop.", "stop moving", -3.0) == Recognition("stop", 1.0)
    # ...but not otherwise: told to expect commands, whisper completes half-commands into one.
    assert decided("Turn left.", "turn left", -3.0) == Recognition("Turn left.", 0.0)
    # Below the margin, a command still counts when whisper's prompted transcript and the grammar
    # (confident enough) both hear it, whole, within the agreed margin...
    ninety = "look at ninety degrees"
    assert decided("Look at 90 degrees.", ninety, -1.5, Recognition(ninety, 0.8)) == Recognition(ninety, 1.0)
    # ...but not one of them alone, an unsure grammar, or a phrase further off.
    assert decided("Look at 90 degrees.", ninety, -1.5, Recognition(ninety, 0.6)).confidence == UNSURE
    assert decided("Look at 90 degrees.", ninety, -1.5, Recognition("look at twenty degrees", 0.9)) == (
        Recognition(ninety, UNSURE)
    )
    assert decided("Look how it is.", ninety, -1.5, Recognition(ninety, 0.9)).confidence == UNSURE
    assert decided("Look at 90 degrees.", ninety, -1.5) == Recognition(ninety, UNSURE)
    assert decided("Look at 90 degrees.", ninety, -2.5, Recognition(ninety, 0.9)) == (
        Recognition("Look at 90 degrees.", 0.0)
    )
    # A long utterance is not scored at all.
    assert decided("What a mess.", None, None) == Recognition("What a mess.", 0.0)


def test_a_command_whose_number_the_transcript_contradicts_is_only_unsure(phrases: CommandPhrases) -> None:
    def decided(text: str, command: str, margin: float) -> Recognition:
        scored = Scored(text, command, margin)
        return decide(scored, phrases.spoken, 0.375, numbers_differ=phrases.numbers_differ)

    # Scored best, within the margin, but whisper wrote another angle: the robot must not move
    # to either on a guess (a tool that asks first is asked about).
    fifty = "look at fifty degrees"
    assert decided("Look at ninety degrees.", fifty, 0.3) == Recognition(fifty, UNSURE)
    assert decided("Look at 90°.", fifty, 0.3) == Recognition(fifty, UNSURE)
    # The same number, another phrase, or a transcript that ended early: taken as before.
    assert decided("Look at 50 degrees.", fifty, 0.3) == Recognition(fifty, 1.0)
    assert decided("Turn left.", "turn left ninety degrees", 0.3) == Recognition(
        "turn left ninety degrees", 1.0
    )
    assert decided("Say hello.", "say good morning", 0.0) == Recognition("say good morning", 1.0)
    assert decided("Turn right 90 degrees.", "turn left ninety degrees", 0.0).confidence == 1.0
    assert phrases.numbers_differ("turn left ninety degrees", "turn left forty five degrees")
    assert not phrases.numbers_differ("turn left ninety degrees", "turn right ninety degrees")
    assert not phrases.numbers_differ("look at ninety degrees", "look at 90 degrees")
    assert not phrases.numbers_differ("look at ninety degrees", "the radio")


def test_a_stop_that_misses_the_margin_still_halts(phrases: CommandPhrases) -> None:
    def decided(
        text: str, command: str, margin: float, near: float, halt: float | None = 2.75
    ) -> Recognition:
        scored = Scored(text, command, margin, "stop", near)
        return decide(scored, phrases.spoken, 0.375, urgent=phrases.urgent, halt_margin=halt)

    # A Scottish "stop" in white noise: whisper writes "What?", and "what time is it" scores best,
    # far below the transcript; "stop" itself is closer, within the halt margin.
    assert decided("What?", "what time is it", -3.1, -2.2) == Recognition("What?", 0.0, halt="stop")
    # Further off: no halt (other speech mostly lands here).
    assert decided("Look at me.", "look at ninety degrees", -2.9, -4.5).halt is None
    # Taken for "stop": the stop tool runs, no extra halt.
    assert decided("Stop.", "stop", 0.0, 0.0) == Recognition("stop", 1.0)
    # Taken for another command that close to its transcript, it still halts first if "stop" is near.
    assert decided("Turn left.", "turn left", 0.0, -1.0) == Recognition("turn left", 1.0, halt="stop")
    # Switched off.
    assert decided("What?", "what time is it", -3.1, -2.2, halt=None).halt is None


async def test_a_lost_stop_halts_before_its_transcript(checked: Resources, phrases: CommandPhrases) -> None:
    # A Scottish "stop" in white noise at 5 dB: whisper writes "Oh.", the grammar hears nothing,
    # and "stop" misses the margin by far; it is still within the halt margin.
    [lost] = matrix.synthesize([matrix.Spec("stop", "en-gb-scotland", 150, "white", 5.0)], seed=3)
    bus = Bus()
    stage = Transcriber(bus, checked.recognizer, early=False)
    out = bus.subscribe(Stop, Transcript, name="test.out")
    task = asyncio.create_task(stage.run())
    end = lost.audio.shape[0] / 16000
    await bus.publish(TurnEnded(t=end + 0.3, turn=1, start=0.0, end=end, audio=lost.audio))
    first, second = await out.get(), await out.get()
    bus.close()
    await task
    assert isinstance(first, Stop)
    assert first.reason == "may have heard 'stop'"
    assert isinstance(second, Transcript)
    # Not taken for the stop command (whose emergency stop latches): the turn is answered with "sorry".
    assert acted_on(phrases, Recognition(second.text, second.confidence)) is None


def test_phrases_are_written_as_whisper_writes_them() -> None:
    tools = default_tools(AgentConfig(), SimulatedBody())
    written = written_commands(CommandPhrases(tools, ("yes",)))
    by_spoken = {w["spoken"]: w for w in written}
    assert by_spoken["stop"] == {"spoken": "stop", "before": "Stop", "after": ".", "urgent": True}
    assert "urgent" not in by_spoken["turn left"]
    assert by_spoken["what time is it"]["after"] == "?"
    turn = by_spoken["turn left {n} degrees"]
    assert (turn["before"], turn["after"]) == ("Turn left", " degrees.")
    assert turn["numbers"][:3] == [5, 10, 15]
    assert turn["number_words"][turn["numbers"].index(45)] == "forty five"
    assert "yes" in by_spoken
    assert "say good morning" in by_spoken  # a str slot is written out with its examples
    named = {w["spoken"]: w for w in written_commands(CommandPhrases(tools, name="robot"))}
    assert named["robot turn left"]["before"] == "Robot, turn left"


@pytest.mark.parametrize("multilingual", [False, True])
def test_texts_are_scored_after_the_start_faster_whisper_writes(multilingual: bool) -> None:
    # A multilingual model (asr.whisper.model may name one) scores garbage unless it is told the
    # language and the task before the text, as it was when it transcribed.
    from faster_whisper.tokenizer import Tokenizer
    from tokenizers import Tokenizer as HfTokenizer

    from avagent.perception.asr.whisper_model import locate

    hf = HfTokenizer.from_file(str(Path(locate(None).folder) / "tokenizer.json"))
    whisper = SimpleNamespace(model=SimpleNamespace(is_multilingual=multilingual), hf_tokenizer=hf)
    scorer = CommandScorer(whisper, [Written("stop", "Stop", ".", urgent=True)])
    theirs = Tokenizer(hf, multilingual, task="transcribe", language="en")
    assert scorer.start_tokens == [*theirs.sot_sequence, theirs.no_timestamps]
    assert (hf.token_to_id("<|en|>") in scorer.start_tokens) is multilingual


def test_the_numbers_a_transcript_names_are_found_in_digits_and_words() -> None:
    # They are scored besides the best-ranked values: "Look at ninety degrees." was once taken
    # for "look at fifty degrees", ninety never having been scored.
    heard = whisper_scoring._words("Look at ninety degrees. Turn forty-five, or 180!")
    assert heard == " look at ninety degrees turn forty five or 180 "
    assert whisper_scoring._names(heard, 90, "ninety")
    assert whisper_scoring._names(heard, 45, "forty five")
    assert whisper_scoring._names(heard, 180, "one hundred eighty")
    assert not whisper_scoring._names(heard, 50, "fifty")
    assert not whisper_scoring._names(heard, 18, "eighteen")


def test_a_phrase_with_two_numbers_cannot_be_scored() -> None:
    @tool(phrases=["move {x} by {y}"])
    async def move(x: Annotated[int, Field(ge=0, le=10)], y: Annotated[int, Field(ge=0, le=10)]) -> str:
        """Move."""
        return "moved"

    with pytest.raises(ValueError, match="two numbers"):
        written_commands(CommandPhrases([move]))
    config = AgentConfig.model_validate(CHECKED)
    phrases = CommandPhrases([move])
    grammar = PocketsphinxRecognizer(phrases.jsgf(), processes=0)
    with pytest.raises(ConfigError, match=r"hearing\.check_commands: .*two numbers"):
        checked_recognizer(config.hearing, config.asr.whisper, grammar, phrases)


async def test_a_long_utterance_is_transcribed_but_never_scored(checked: Resources) -> None:
    recognizer = checked.recognizer
    assert isinstance(recognizer, CheckedRecognizer)
    stop = matrix.synthesize(matrix.command_specs(voices=("en-us",), noises=("pink",), snrs=(20.0,))[:1])[0]
    padded = np.concatenate([stop.audio, np.zeros(16 * 16000, dtype=np.float32)])
    assert (await recognizer.scorer.scored(stop.audio, 16000)).command == "stop"
    scored = await recognizer.scorer.scored(padded, 16000)
    assert scored.command is None
    assert scored.margin is None


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
    recognizer = checked.recognizer
    assert isinstance(recognizer, CheckedRecognizer)
    hearing = checked.config.hearing
    right: list[matrix.Utterance] = []
    another = []
    by_grammar = without_agreement = 0
    for u in utterances:
        # What transcribe does, with the two parts kept, to decide again without the agreement.
        scored = await recognizer.scorer.scored(u.audio, 16000)
        heard = await recognizer.grammar.transcribe(u.audio, 16000)
        result = recognizer.decided(scored, heard)
        acted = acted_on(phrases, result)
        if acted == u.text:
            right.append(u)
        elif acted is not None:
            another.append((u.text, u.voice, u.noise, u.snr_db, result))
        by_grammar += acted_on(phrases, heard) == u.text
        alone = decide(scored, phrases.spoken, hearing.accept_margin, urgent=phrases.urgent)
        without_agreement += acted_on(phrases, alone) == u.text
    # Measured: 24 of 32; without the agreement of the grammar and whisper's prompted transcript
    # 21, the grammar alone 17, on the same audio (these are hard cells: received pronunciation and
    # a female voice in babble and music); none was taken for another command. The target is 99 %
    # (bench/hearing.py, full matrix).
    assert len(right) >= 0.7 * len(utterances)
    assert len(right) >= by_grammar + 5
    assert len(right) > without_agreement
    assert len(another) <= 1, another


async def test_a_failing_grammar_leaves_whisper_to_decide(checked: Resources) -> None:
    recognizer = checked.recognizer
    assert isinstance(recognizer, CheckedRecognizer)

    class Broken:
        name = "broken"

        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
            raise RuntimeError("the grammar worker died")

    hearing = checked.config.hearing
    alone = CheckedRecognizer(
        Broken(),
        recognizer.scorer,
        checked.phrases.spoken,
        accept_margin=hearing.accept_margin,
        agreed_margin=hearing.agreed_margin,
        urgent=checked.phrases.urgent,
    )
    stop = matrix.synthesize(matrix.command_specs(voices=("en-us",), noises=("pink",), snrs=(20.0,))[:1])[0]
    assert await alone.transcribe(stop.audio, 16000) == Recognition("stop", 1.0)


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
    # as "stop moving"); scored by whisper, none ("what a mess" in babble at 15 dB comes closest:
    # unsure of "what time is it", so answered with "sorry"). The benchmark measures 300.
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
