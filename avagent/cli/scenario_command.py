"""``avagent test``: conversation tests, offline (docs/testing-agents.md).

    avagent test examples/scenarios [--junit results.xml] [--json]

Every scenario file (``*.yaml``, ``*.yml``; a folder is searched one level deep, in name order) is
checked before anything runs: a bad one exits 2 with one line. Then each runs through a fresh
agent; the exit status is 0 when every scenario passes and 1 when one fails, with an account of
what was expected and what happened.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.cli.scenario_run import run_scenario_async, scenario_config
from avagent.core.files import check_output
from avagent.sim.scenario_checks import ScenarioResult
from avagent.sim.scenarios import LoadedScenario, ScenarioError, load_scenario

MAX_SCENARIO_FILES = 500


def add_parser(commands: Any) -> None:
    """Register ``test`` with the command line's subcommands."""
    test = commands.add_parser("test", help="run conversation tests (YAML scenarios) offline")
    test.add_argument("path", type=Path, help="a scenario file, or a folder of them")
    test.add_argument("--junit", type=Path, metavar="FILE.xml", help="also write the results as JUnit XML")
    test.add_argument("--json", action="store_true", help="one JSON object per scenario on stdout")
    test.set_defaults(func=cmd_test)


def scenario_files(path: Path) -> list[Path]:
    """The scenario files at ``path``; ``ScenarioError`` when there are none."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise ScenarioError(f"{path}: no scenario files (*.yaml) in this folder")
        if len(files) > MAX_SCENARIO_FILES:
            raise ScenarioError(f"{path}: more than {MAX_SCENARIO_FILES} scenario files")
        return files
    if not path.exists():
        raise ScenarioError(f"{path}: no such file or folder")
    return [path]


def cmd_test(args: argparse.Namespace) -> int:
    scenarios = [load_scenario(p) for p in scenario_files(args.path)]
    configs = [scenario_config(s) for s in scenarios]  # a bad config is found before anything runs
    if args.junit is not None:
        check_output(args.junit, [Path(s.source) for s in scenarios], "JUnit file")
    results = asyncio.run(_run_all(scenarios, configs, args.json))
    failed = [r for r, _ in results if not r.passed]
    _say(f"{len(results) - len(failed)} of {len(results)} scenario(s) passed")
    if args.junit is not None:
        write_junit(args.junit, results)
    return 1 if failed else 0


async def _run_all(
    scenarios: list[LoadedScenario], configs: list[AgentConfig], as_json: bool
) -> list[tuple[ScenarioResult, float]]:
    shared: dict[str, Resources] = {}
    results = []
    try:
        for loaded, config in zip(scenarios, configs, strict=True):
            key = config.model_dump_json()
            if key not in shared:
                shared[key] = Resources(config)
                await shared[key].start()
            began = time.monotonic()
            result = await run_scenario_async(loaded, config=config, resources=shared[key])
            spent = time.monotonic() - began
            results.append((result, spent))
            if as_json:
                print(json.dumps(result_dict(result)), flush=True)
            print(
                ("PASS " if result.passed else "FAIL ") + f"{result.name} ({loaded.source})", file=sys.stderr
            )
            if not result.passed:
                print(result.account(), file=sys.stderr)
    finally:
        for resources in shared.values():
            await resources.stop()
    return results


def result_dict(result: ScenarioResult) -> dict[str, Any]:
    return {
        "scenario": result.name,
        "file": result.source,
        "passed": result.passed,
        "problems": result.problems,
        "turns": [
            {
                "turn": t.number,
                "user": t.user,
                "passed": t.passed,
                "checks": [{"expected": c.expected, "ok": c.ok, "detail": c.detail} for c in t.checks],
                "heard": t.heard,
                "said": t.said,
            }
            for t in result.turns
        ],
    }


def write_junit(path: Path, results: list[tuple[ScenarioResult, float]]) -> None:
    """The results as JUnit XML: one test case per scenario, its account as the failure."""
    failures = sum(not r.passed for r, _ in results)
    suite = ET.Element(
        "testsuite",
        name="avagent scenarios",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{sum(s for _, s in results):.3f}",
    )
    for result, spent in results:
        case = ET.SubElement(
            suite, "testcase", classname=result.source, name=result.name, time=f"{spent:.3f}"
        )
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=f"scenario {result.name} failed")
            failure.text = result.account()
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _say(line: str) -> None:
    print(f"avagent: {line}", file=sys.stderr)
