"""Conversation tests (``avagent test``, ``run_scenario``): scenarios of spoken turns, run offline,
pass when the agent does what they expect and fail with an account of what happened."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from avagent.agent.config import AgentConfig, with_overrides
from avagent.agent.files import FileRun
from avagent.agent.resources import Resources
from avagent.cli.scenario_run import run_scenario
from avagent.sim.scenarios import ScenarioError, load_scenario
from tests.conftest import SceneFactory

RIGHT = {"direction": "right"}
DIGIT = r"\d"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "scenarios"


def avagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avagent", *args], capture_output=True, text=True, timeout=300
    )


def test_the_example_scenarios_pass_and_junit_is_written(tmp_path: Path) -> None:
    junit = tmp_path / "results.xml"
    done = avagent("test", str(EXAMPLES), "--junit", str(junit))
    assert done.returncode == 0, done.stderr
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert f"{len(files)} of {len(files)} scenario(s) passed" in done.stderr
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(len(files))
    assert suite.get("failures") == "0"


def test_a_correct_scenario_passes_and_its_turns_can_be_asserted_on(resources: Resources) -> None:
    result = run_scenario(
        {
            "name": "commands",
            "turns": [
                {
                    "user": "turn right",
                    "expect": [{"tool_call": {"name": "turn", "args": {"direction": "right"}}}],
                },
                {
                    "user": {"text": "what time is it", "voice": "en-gb"},
                    "expect": [{"say": {"matches": r"\d"}}],
                },
            ],
        },
        resources=resources,
    )
    result.assert_passed()
    first = result.turn(1)
    first.expect_tool_call("turn", direction="right", degrees=90)
    first.expect_say("right", within_ms=3000)
    first.expect_transcript("turn right")
    result.turn(2).expect_no_tool_call("turn")
    with pytest.raises(
        AssertionError, match=r"turn 1 \('turn right'\): expected tool_call turn\(direction='left'\)"
    ):
        first.expect_tool_call("turn", direction="left")
    with pytest.raises(AssertionError, match="what_time"):
        result.turn(2).expect_no_tool_call()


def test_a_wrong_scenario_fails_with_a_clear_account(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "name: wrong\n"
        "turns:\n"
        "  - user: turn left\n"
        "    expect:\n"
        "      - tool_call: {name: turn, args: {direction: right}}\n"
        "      - say: {contains: left, within_ms: 1}\n"
        "  - user: stop\n"
        "    expect:\n"
        "      - no_tool_call: true\n"
    )
    junit = tmp_path / "results.xml"
    done = avagent("test", str(wrong), "--junit", str(junit))
    assert done.returncode == 1, done.stderr
    err = done.stderr
    assert "FAIL wrong" in err
    assert "FAIL tool_call turn(direction='right'): no such tool_call" in err
    assert "FAIL say contains 'left' within 1 ms: it came" in err
    assert "what happened: heard 'turn left'; tool calls turn(direction='left', degrees=90)" in err
    assert "FAIL no tool call: got stop()" in err
    assert "0 of 1 scenario(s) passed" in err
    failure = ET.parse(junit).getroot().find("testcase/failure")
    assert failure is not None
    assert "no such tool_call" in (failure.text or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nturns:\n  - user: turn left\n    expect:\n      - tool_cal: {name: x}\n",
            "unknown setting",
        ),
        ("name: x\nturns: []\n", "turns"),
        ("turns:\n  - user: turn left\n    expect:\n      - say: {matches: '('}\n", "regular expression"),
        ("turns:\n  - user: {wav: missing.wav}\n", "no such file"),
        ("- just a list\n", "a scenario is a mapping"),
        ("turns: [\n", "not valid YAML"),
    ],
)
def test_a_bad_scenario_file_exits_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(bad)
    done = avagent("test", str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"avagent: error: {bad}")
    assert message in lines[0]


def test_a_folder_with_one_bad_scenario_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("turns:\n  - user: stop\n")
    (tmp_path / "b.yaml").write_text("turns:\n  - uzer: stop\n")
    done = avagent("test", str(tmp_path))
    assert done.returncode == 2
    assert "b.yaml" in done.stderr
    assert "PASS" not in done.stderr


def test_user_turns_from_a_wav_file_and_from_a_recording(
    make_scene: SceneFactory, resources: Resources, tmp_path: Path
) -> None:
    _, wav = make_scene(["turn left"], snr_db=30.0, seed=3)
    mcap = tmp_path / "stop.mcap"
    _, stop_wav = make_scene(["stop"], snr_db=30.0, seed=4)
    config = with_overrides(AgentConfig(), **{"record.file": str(mcap)})
    asyncio.run(FileRun(stop_wav, config, resources=resources).run())
    scenario = tmp_path / "files.yaml"
    scenario.write_text(
        f"turns:\n"
        f"  - user: {{wav: {wav}}}\n"
        f"    expect:\n"
        f"      - tool_call: {{name: turn, args: {{direction: left}}}}\n"
        f"  - user: {{recording: {mcap.name}}}\n"
        f"    expect:\n"
        f"      - tool_call: {{name: stop}}\n"
        f"      - say: {{matches: '(?i)stop'}}\n"
    )
    result = run_scenario(scenario, resources=resources)
    result.assert_passed()
    assert result.turn(2).heard == ["stop"]
