"""Offline recognition with the real pocketsphinx decoder and a grammar made from the tools."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources, default_tools
from avagent.io.actuators import SimulatedBody
from avagent.perception.asr.base import RecognizerError
from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer
from avagent.sim.scene import Scene
from avagent.tools.phrases import CommandPhrases
from tests.conftest import SceneFactory

COMMANDS = [
    "turn left",
    "turn right",
    "turn left ninety degrees",
    "turn right forty five degrees",
    "look at one hundred twenty degrees",
    "look at two hundred seventy degrees",
    "what time is it",
    "what is the time",
    "stop",
    "stop moving",
    "say good morning",
    "say thank you",
]
NOT_COMMANDS = [
    "open the window please",
    "hello how are you",
    "the weather is nice today",
    "banana",
    "play some music",
    "turn on the lights",
    "tell me a joke",
    "where are my keys",
]


def utterances(scene: Scene) -> list[tuple[str, np.ndarray]]:
    """Each phrase's audio with the context the listener would give it."""
    rate = scene.sample_rate
    return [
        (p.text, scene.audio[round((p.start - 0.25) * rate) : round((p.end + 0.2) * rate)])
        for p in scene.phrases
    ]


@pytest.fixture(scope="module")
def phrases() -> CommandPhrases:
    return CommandPhrases(default_tools(AgentConfig(), SimulatedBody()))


@pytest.fixture(scope="module")
def recognizer(phrases: CommandPhrases) -> PocketsphinxRecognizer:
    return PocketsphinxRecognizer(phrases.jsgf(), processes=0)


@pytest.mark.parametrize("voice", ["en-us", "en-us+f2"])
@pytest.mark.parametrize("snr_db", [None, 20.0])
def test_synthesised_commands_are_recognised_exactly(
    make_scene: SceneFactory,
    recognizer: PocketsphinxRecognizer,
    phrases: CommandPhrases,
    voice: str,
    snr_db: float | None,
) -> None:
    scene, _ = make_scene(COMMANDS, voice=voice, snr_db=snr_db, gap_s=0.6, lead_s=0.5, seed=21)
    for said, audio in utterances(scene):
        result = recognizer.transcribe_sync(audio, scene.sample_rate)
        assert result.text == said
        assert result.confidence is not None
        assert result.confidence >= 0.75, f"{said!r} recognised with low confidence {result.confidence}"
        assert phrases.match(result.text, exact=True) is not None


def test_speech_outside_the_grammar_is_mostly_rejected(
    make_scene: SceneFactory, recognizer: PocketsphinxRecognizer, phrases: CommandPhrases
) -> None:
    accepted = []
    total = 0
    for voice in ("en-us", "en-us+f2"):
        scene, _ = make_scene(NOT_COMMANDS, voice=voice, snr_db=20.0, gap_s=0.6, lead_s=0.5, seed=22)
        for said, audio in utterances(scene):
            result = recognizer.transcribe_sync(audio, scene.sample_rate)
            total += 1
            sure = result.confidence is None or result.confidence >= 0.75
            if result.text and sure and phrases.match(result.text, exact=True):
                accepted.append((said, result.text, result.confidence))
    # A grammar forces speech onto its phrases; the phone-loop confidence catches most of it.
    assert len(accepted) / total <= 0.15, accepted


async def test_worker_processes_give_the_same_answer_as_in_process(
    make_scene: SceneFactory, resources: Resources, recognizer: PocketsphinxRecognizer
) -> None:
    scene, _ = make_scene(COMMANDS[:4], snr_db=20.0, gap_s=0.6, lead_s=0.5, seed=23)
    for said, audio in utterances(scene):
        remote = await resources.recognizer.transcribe(audio, scene.sample_rate)
        local = recognizer.transcribe_sync(audio, scene.sample_rate)
        # The phone loop's frame skipping keeps a little state between utterances: confidences of
        # decoders with different histories differ in the third decimal.
        assert remote.text == local.text == said
        assert remote.confidence == pytest.approx(local.confidence, abs=0.01)


async def test_worker_processes_leave_no_files_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phrases: CommandPhrases
) -> None:
    """Each decoder reads a feature file written at its start; a worker killed (with the agent)
    runs no exit handler, so the file must be gone as soon as the decoders are made."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    workers = PocketsphinxRecognizer(phrases.jsgf(), processes=2)
    await workers.start()
    try:
        said = await workers.transcribe(np.zeros(16000, dtype=np.float32), 16000)
        left = _files(tmp_path)
    finally:
        await workers.stop()
    assert said.text == ""
    assert left == []


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_resampled_input_is_recognised(make_scene: SceneFactory, recognizer: PocketsphinxRecognizer) -> None:
    import soxr

    scene, _ = make_scene(["turn right forty five degrees"], snr_db=20.0, seed=24)
    ((said, audio),) = utterances(scene)
    audio44 = np.asarray(soxr.resample(audio, 16000, 44100), dtype=np.float32)
    assert recognizer.transcribe_sync(audio44, 44100).text == said


async def test_silence_and_empty_audio_give_no_words(recognizer: PocketsphinxRecognizer) -> None:
    assert (await recognizer.transcribe(np.zeros(0, dtype=np.float32), 16000)).text == ""
    assert recognizer.transcribe_sync(np.zeros(16000, dtype=np.float32), 16000).text == ""


def test_a_phrase_word_missing_from_the_dictionary_is_named() -> None:
    grammar = "#JSGF V1.0;\ngrammar g;\npublic <command> = ( flibbertigibbet now );\n"
    with pytest.raises(RecognizerError, match="flibbertigibbet"):
        PocketsphinxRecognizer(grammar, processes=0)


def test_a_broken_grammar_says_so() -> None:
    with pytest.raises(RecognizerError, match="grammar"):
        PocketsphinxRecognizer("#JSGF V1.0;\ngrammar g;\npublic <command> = ( turn left ;\n", processes=0)
