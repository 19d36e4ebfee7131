"""The ``avagent`` command as a user runs it: real processes, real files, exit statuses."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SceneFactory


def avagent(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avagent", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("avagent: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_run_on_a_file_prints_the_event_contract_and_writes_the_voice(
    make_scene: SceneFactory, tmp_path: Path
) -> None:
    _, path = make_scene(["turn left", "what time is it"], gap_s=3.0, snr_db=20.0, seed=31)
    out = tmp_path / "voice.wav"
    result = avagent("run", "--input", str(path), "--json", "--output", str(out))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(isinstance(e["type"], str) and isinstance(e["t"], float | int) for e in events)
    calls = [e for e in events if e["type"] == "tool_call"]
    assert [c["name"] for c in calls] == ["turn", "what_time"]
    assert calls[0]["args"] == {"direction": "left", "degrees": 90}
    says = [e["text"] for e in events if e["type"] == "say"]
    assert says[0] == "Turning left 90 degrees."
    ended = [e for e in events if e["type"] == "speech_ended"]
    assert all(e["start"] < e["end"] <= e["t"] for e in ended)
    assert "policy commands" in result.stderr
    voice, rate = sf.read(str(out), dtype="float32")
    first = next(e["t"] for e in events if e["type"] == "speaking_started")
    assert np.abs(voice[round(first * rate) : round((first + 0.5) * rate)]).max() > 0.05
    assert np.abs(voice[: round((first - 0.05) * rate)]).max() == 0.0, "no voice before the first answer"


def test_run_without_json_prints_a_readable_timeline(make_scene: SceneFactory) -> None:
    _, path = make_scene(["stop"], snr_db=20.0, seed=32)
    result = avagent("run", "--input", str(path))
    assert result.returncode == 0, result.stderr
    assert 'heard: "stop"' in result.stdout
    assert "tool:  stop()" in result.stdout


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing.wav", "no such file"),
        (lambda d: (d / "empty.wav").write_bytes(b"") or d / "empty.wav", "the file is empty"),
        (lambda d: (d / "notes.wav").write_text("not audio") and d / "notes.wav", "not a WAV file"),
    ],
)
def test_bad_input_files_exit_2_with_one_line(tmp_path: Path, setup: object, message: str) -> None:
    path = setup(tmp_path)  # type: ignore[operator]
    assert_one_line_error(avagent("run", "--input", str(path)), message)


def test_truncated_and_nan_files_exit_2(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    sf.write(str(good), np.full((16000, 1), 0.1, dtype=np.float32), 16000, subtype="PCM_16")
    (tmp_path / "cut.wav").write_bytes(good.read_bytes()[:20000])
    assert_one_line_error(avagent("run", "--input", str(tmp_path / "cut.wav")), "truncated")
    nan = np.zeros((16000, 1), dtype=np.float32)
    nan[100] = np.nan
    sf.write(str(tmp_path / "nan.wav"), nan, 16000, subtype="FLOAT")
    assert_one_line_error(avagent("vad", str(tmp_path / "nan.wav")), "NaN or infinite samples")


def test_an_invalid_config_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("turns:\n  hangover_ms: later\n")
    assert_one_line_error(avagent("run", "--config", str(config), "--input", "x.wav"), "turns.hangover_ms")


def test_without_a_sound_card_run_and_devices_say_so() -> None:
    devices = avagent("devices")
    assert devices.returncode == 0
    assert "no audio devices found" in devices.stdout
    assert_one_line_error(avagent("run"), "no audio output device found")


def test_describe_prints_the_wiring_and_runs_nothing(make_scene: SceneFactory) -> None:
    _, path = make_scene(["turn left"], snr_db=20.0, seed=3)
    live = avagent("run", "--describe", "--json")
    assert live.returncode == 0, live.stderr
    rows = {row["stage"]: row for row in map(json.loads, live.stdout.splitlines())}
    assert list(rows)[:5] == ["microphone", "listener", "asr", "policy", "speech_out"]
    assert rows["microphone"]["readers"] == ["listener"], "the sound card is described, not opened"
    assert "turn_ended" in rows["listener"]["produces"]
    assert rows["policy"]["sources"] == ["asr", "listener", "speech_out"]
    on_file = avagent("run", "--describe", "--input", str(path))
    assert on_file.returncode == 0, on_file.stderr
    assert on_file.stdout.startswith("file_source\n")
    assert "  read by:  asr, policy, speech_out, trace" in on_file.stdout


def test_vad_prints_the_speech_segments(make_scene: SceneFactory) -> None:
    scene, path = make_scene(["turn left", "stop"], snr_db=20.0, gap_s=1.5, seed=33)
    result = avagent("vad", str(path), "--json")
    assert result.returncode == 0, result.stderr
    segments = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(segments) == 2
    for segment, phrase in zip(segments, scene.phrases, strict=True):
        assert abs(segment["start"] - phrase.start) < 0.1
        assert abs(segment["end"] - phrase.end) < 0.1
    plain = avagent("vad", str(path))
    assert len(plain.stdout.splitlines()) == 2


def test_sigterm_stops_a_real_time_run_cleanly(make_scene: SceneFactory, tmp_path: Path) -> None:
    _, path = make_scene(["turn left"], snr_db=20.0, lead_s=5.0, tail_s=5.0, seed=34)
    out = tmp_path / "voice.wav"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "avagent",
            "run",
            "--input",
            str(path),
            "--realtime",
            "--json",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the agent is running once it has spoken
        assert json.loads(first)["type"]
    except Exception:
        process.kill()
        raise
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    info = sf.info(str(out))
    assert info.frames > 0, "the voice written so far is kept in a valid file"


def test_demo_runs_offline_and_writes_its_results(tmp_path: Path) -> None:
    result = avagent("demo", "--out", str(tmp_path / "demo"), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("scene.wav", "replies.wav", "conversation.wav", "events.jsonl", "timeline.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    assert "7 of 7 handled as expected" in result.stderr
    events = [json.loads(line) for line in (tmp_path / "demo" / "events.jsonl").read_text().splitlines()]
    assert sum(e["type"] == "tool_call" for e in events) == 6
    for act in ("sight", "safety", "room", "replay", "hearing"):
        for name in ("scene.wav", "replies.wav", "events.jsonl"):
            assert (tmp_path / "demo" / act / name).stat().st_size > 0, (act, name)
        assert re.search(rf"^  {act} +ok ", result.stderr, re.MULTILINE), f"the {act} act passes its checks"
    assert "[BAD]" not in result.stderr
    sight = [
        json.loads(line) for line in (tmp_path / "demo" / "sight" / "events.jsonl").read_text().splitlines()
    ]
    assert [e["source"] for e in sight if e["type"] == "scene"] == ["perception", "perception"]
    safety = (tmp_path / "demo" / "safety" / "events.jsonl").read_text()
    assert '"type": "estop"' in safety
    assert '"type": "estop_cleared"' in safety
    # The replay act recorded a session, replayed it with the recorded tool results, and compared.
    assert "avagent replay --compare: 0 difference(s) from the recording" in result.stderr
    replayed = (tmp_path / "demo" / "replay" / "events.jsonl").read_text()
    assert '"name": "what_time"' in replayed
    assert '"type": "actuator"' not in replayed
    _assert_the_hearing_act(tmp_path / "demo" / "hearing", result.stderr)


def _assert_the_hearing_act(folder: Path, stderr: str) -> None:
    """The agent talked on over its own echo until the user, 15 dB under it, cut its voice."""
    from avagent.cli.demo.hearing_act import CUT_IN_AT
    from avagent.perception.asr.whisper_model import whisper_installed

    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]

    def times(kind: str) -> list[float]:
        return [e["t"] for e in events if e["type"] == kind]

    assert [t for t in times("speaking_started") if t < CUT_IN_AT - 2.0], "a long answer was under way"
    assert not [t for t in times("barge_in") + times("pause_speaking") if t < CUT_IN_AT], "no cut before"
    assert [t for t in times("barge_in") if CUT_IN_AT <= t <= CUT_IN_AT + 2.0], "the user cut in"
    cut = [e["t"] for e in events if e["type"] == "speaking_ended" and e["interrupted"]]
    assert cut, "the voice was cut"
    assert CUT_IN_AT <= cut[0] <= CUT_IN_AT + 2.0, "after the user spoke"
    heard = sf.info(str(folder / "scene.wav"))
    assert heard.samplerate == 16000
    assert heard.duration >= 8.0, "what the microphone heard"
    free = [line for line in stderr.splitlines() if line.startswith("  free speech:")]
    assert len(free) == 1, stderr[-2000:]
    if whisper_installed():
        assert "station" in free[0].split(" heard ", 1)[1].lower(), free[0]
        assert "sha256" in free[0]
    else:
        assert "pip install" in free[0]
