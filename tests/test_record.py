"""Recording a session (``record:``, ``avagent run --record``): everything goes into one MCAP file
as the session goes, a recorded run replays to the same events, and a file cut short is still
read and replayed up to the cut."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import numpy as np
import pytest

from avagent.agent.compare import comparable, compare
from avagent.agent.config import AgentConfig, with_overrides
from avagent.agent.files import FileRun, RunResult
from avagent.agent.replay import replay_recording
from avagent.agent.resources import Resources
from avagent.core.errors import InputError
from avagent.io.recording.contents import scan
from avagent.io.recording.format import AUDIO_IN, decode_audio, encode_audio
from avagent.io.recording.reader import RecordingReader
from avagent.io.wav import read_wav
from tests.conftest import SceneFactory


def record(wav: Path, mcap: Path, resources: Resources, **settings: object) -> RunResult:
    config = with_overrides(AgentConfig(), **{"record.file": str(mcap), **settings})
    return asyncio.run(FileRun(wav, config, resources=resources).run())


@pytest.fixture(scope="module")
def session(
    make_scene: SceneFactory, resources: Resources, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, RunResult]:
    """Two commands, recorded; the file is flushed often so that it has many chunks to cut at."""
    _, wav = make_scene(["turn left", "what time is it"], snr_db=30.0, seed=3)
    mcap = tmp_path_factory.mktemp("record") / "session.mcap"
    return wav, mcap, record(wav, mcap, resources, **{"record.flush_s": 0.02})


def steady(events: list[dict[str, object]]) -> list[dict[str, object]]:
    voice = {"played_s", "total_s"}
    return [
        {k: v for k, v in e.items() if not (e["type"] == "speaking_ended" and (k in voice or k == "t"))}
        for e in comparable(events)
    ]


def recorded_input(path: Path) -> np.ndarray:
    blocks = [decode_audio(m.data).samples for m in RecordingReader(path).messages() if m.topic == AUDIO_IN]
    return np.concatenate(blocks)


def test_the_recording_holds_the_input_the_voice_the_events_the_tools_and_the_config(
    session: tuple[Path, Path, RunResult],
) -> None:
    wav, mcap, run = session
    contents = scan(mcap)
    assert contents.cut is None
    samples, rate = read_wav(wav)
    assert contents.audio is not None
    assert contents.audio.sample_rate == rate
    np.testing.assert_array_equal(recorded_input(mcap)[: samples.shape[0], 0], samples.reshape(-1))
    assert contents.voice_s > 1.0
    assert contents.events == run.dicts()
    assert [(t["name"], t["args"], t["ok"]) for t in contents.tools] == [
        ("turn", {"direction": "left", "degrees": 90}, True),
        ("what_time", {}, True),
    ]
    assert contents.config is not None
    assert contents.config["policy"]["model"] is None
    assert "numpy" in contents.versions
    assert contents.lockstep


def test_a_recorded_run_replays_to_identical_events(
    session: tuple[Path, Path, RunResult], resources: Resources
) -> None:
    _, mcap, run = session
    contents, replayed = asyncio.run(replay_recording(mcap, resources=resources))
    # espeak-ng's voice varies by a sample or two with what this process synthesised before
    # (sim/voices.py); the exact identity of two fresh processes is tests/test_replay.py's.
    assert steady(replayed.dicts()) == steady(run.dicts())
    assert compare(contents.events, replayed.dicts()) == []
    # What the tools answered comes from the recording: the time is the recorded time.
    said = [e["text"] for e in replayed.dicts() if e["type"] == "say"]
    assert said == [e["text"] for e in run.dicts() if e["type"] == "say"]


def test_a_recording_cut_at_a_random_byte_is_replayed_up_to_the_cut(
    session: tuple[Path, Path, RunResult], resources: Resources, tmp_path: Path
) -> None:
    _, mcap, run = session
    data = mcap.read_bytes()
    full = recorded_input(mcap)
    rng = random.Random(12)
    for n in range(3):
        cut = tmp_path / f"cut{n}.mcap"
        cut.write_bytes(data[: rng.randrange(len(data) // 2, len(data) * 19 // 20)])
        contents = scan(cut)
        assert contents.cut is not None
        # What was read is exactly the start of the session.
        kept = recorded_input(cut)[: contents.audio.frames if contents.audio else 0]
        np.testing.assert_array_equal(kept, full[: kept.shape[0]])
        assert contents.events == run.dicts()[: len(contents.events)]
        _, replayed = asyncio.run(replay_recording(cut, resources=resources))
        assert compare(contents.events, replayed.dicts(), complete=False) == []


def test_a_file_cut_anywhere_is_read_or_refused_with_one_line(
    session: tuple[Path, Path, RunResult], tmp_path: Path
) -> None:
    _, mcap, _ = session
    data = mcap.read_bytes()
    whole = scan(mcap).messages
    rng = random.Random(5)
    cut = tmp_path / "cut.mcap"
    refusals: list[str] = []
    for size in [0, 5, 8, 40, *(rng.randrange(len(data)) for _ in range(40))]:
        cut.write_bytes(data[:size])
        try:
            contents = scan(cut)
        except InputError as exc:
            refusals.append(str(exc))
            continue
        # Cut inside the summary that follows the data, nothing is lost.
        assert contents.cut is not None or contents.messages == whole
    assert refusals  # the shortest cuts hold no session
    assert all("\n" not in r and len(r) < 300 for r in refusals)


def test_damaged_audio_ends_the_recording_there(tmp_path: Path) -> None:
    from avagent.io.recording.writer import RecordingWriter

    path = tmp_path / "damaged.mcap"
    writer = RecordingWriter(path, {"format": "1"})
    writer.start()
    block = np.zeros((512, 1), dtype=np.int16)
    writer.put(AUDIO_IN, 0.0, encode_audio(block, 16000, 0.0))
    writer.put(AUDIO_IN, 0.032, b"\x09" * 40)  # an unknown sample format
    writer.put(AUDIO_IN, 0.064, encode_audio(block, 16000, 0.064))
    writer.stop()
    contents = scan(path)
    assert contents.audio is not None
    assert contents.audio.blocks == 1
    assert contents.cut is not None
    assert "damaged" in contents.cut


def test_record_on_the_command_line_and_a_recording_that_cannot_be_written(
    session: tuple[Path, Path, RunResult], tmp_path: Path
) -> None:
    import subprocess
    import sys

    wav, _, _ = session
    mcap = tmp_path / "cli.mcap"
    done = subprocess.run(
        [sys.executable, "-m", "avagent", "run", "--input", str(wav), "--record", str(mcap), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"recorded in {mcap}" in done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert comparable(scan(mcap).events) == comparable(printed)
    refused = subprocess.run(
        [sys.executable, "-m", "avagent", "run", "--input", str(wav), "--record", str(wav)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_killed_session_keeps_what_was_recorded_before(make_scene: SceneFactory, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    _, wav = make_scene(["turn left", "what time is it", "stop"], snr_db=30.0, seed=8)
    mcap = tmp_path / "killed.mcap"
    process = subprocess.Popen(
        [sys.executable, "-m", "avagent", "run", "--input", str(wav), "--realtime", "--record", str(mcap)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Wait until the file, still being written, holds some audio; then a little more.
        seen = 0.0
        deadline = time.monotonic() + 120
        while seen == 0.0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            try:
                seen = scan(mcap).duration
            except InputError:
                continue
        assert seen > 0.0, "the recording is written while the session goes on"
        time.sleep(1.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    contents = scan(mcap)
    assert contents.cut is not None  # no summary: the process never finished the file
    assert contents.duration > seen


def test_a_recording_that_cannot_be_made_is_said_once_and_the_session_goes_on(
    session: tuple[Path, Path, RunResult], resources: Resources, tmp_path: Path
) -> None:
    wav, _, _ = session
    run = record(wav, tmp_path / "no such folder" / "x.mcap", resources)
    errors = [e for e in run.dicts() if e["type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["stage"] == "recording"
    assert errors[0]["message"].startswith("not recording:")
    assert [e["name"] for e in run.dicts() if e["type"] == "tool_call"] == ["turn", "what_time"]
