"""Running a conversation test: a scenario's user turns through a fresh agent, offline.

The turns become audio (``sim/scenarios.py``), are fed turn by turn in lockstep
(``io/turn_source.py``: each once the agent has finished with the last), and what the agent did
is checked against the expectations (``sim/scenario_checks.py``). From pytest::

    result = run_scenario("examples/scenarios/turning.yaml", resources=resources)
    result.assert_passed()
    result.turn(1).expect_tool_call("turn", direction="left")
    result.turn(1).expect_say(matches=r"(?i)left")
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from avagent.agent.config import AgentConfig, load_config
from avagent.agent.files import FileRun
from avagent.agent.resources import Resources
from avagent.core.messages import SAMPLE_RATE
from avagent.io.turn_source import TurnAudioSource
from avagent.sim.scenario_checks import ScenarioResult, Window, check_scenario
from avagent.sim.scenarios import LoadedScenario, load_scenario, parse_scenario, prepare_audio
from avagent.tools.registry import ToolRegistry

MAX_WAIT_S = 30.0
"""How long after a turn the agent may stay busy before the next turn is fed anyway."""


def scenario_config(loaded: LoadedScenario, config: AgentConfig | None = None) -> AgentConfig:
    """``config``, or the scenario's own, or the defaults; never a camera, a robot bus or a recording."""
    if config is None:
        path = loaded.scenario.config
        config = load_config(loaded.path(path)) if path is not None else AgentConfig()
    data = config.model_dump()
    data["camera"]["source"] = None
    data["mqtt"]["url"] = None
    data["record"].update(file=None, folder=None)
    return AgentConfig.model_validate(data)


def as_scenario(scenario: str | Path | LoadedScenario | dict[str, Any]) -> LoadedScenario:
    if isinstance(scenario, LoadedScenario):
        return scenario
    if isinstance(scenario, dict):
        return parse_scenario(scenario)
    return load_scenario(scenario)


async def run_scenario_async(
    scenario: str | Path | LoadedScenario | dict[str, Any],
    *,
    config: AgentConfig | None = None,
    resources: Resources | None = None,
    tools: ToolRegistry | None = None,
) -> ScenarioResult:
    """Run ``scenario`` (a file, its data, or a loaded one) and check it; ``ScenarioError`` (one
    line) when it cannot be run."""
    loaded = as_scenario(scenario)
    agent_config = scenario_config(loaded, config)
    turns = await asyncio.to_thread(prepare_audio, loaded)
    sources: list[TurnAudioSource] = []

    def source(agent: Any) -> TurnAudioSource:
        made = TurnAudioSource(
            [t.audio for t in turns],
            agent.bus,
            agent.clock,
            sample_rate=SAMPLE_RATE,
            block_ms=agent.config.audio.input.block_ms,
            max_wait_s=MAX_WAIT_S,
        )
        sources.append(made)
        return made

    run = FileRun(None, agent_config, resources=resources, tools=tools, source=source, realtime=False)
    result = await run.run()
    fed = sources[0]
    windows = []
    for index, turn in enumerate(turns):
        start = fed.starts[index] if index < len(fed.starts) else float("inf")
        following = fed.starts[index + 1] if index + 1 < len(fed.starts) else None
        speech_end = start + turn.speech_end if turn.speech_end is not None else None
        windows.append(Window(start, speech_end, following))
    checked = check_scenario(loaded, result.dicts(), windows)
    for index in fed.timed_out:
        checked.problems.append(f"after turn {index + 1} the agent was still busy after {MAX_WAIT_S:g} s")
    return checked


def run_scenario(
    scenario: str | Path | LoadedScenario | dict[str, Any],
    *,
    config: AgentConfig | None = None,
    resources: Resources | None = None,
    tools: ToolRegistry | None = None,
) -> ScenarioResult:
    """``run_scenario_async`` from code that is not async (a pytest test)."""
    return asyncio.run(run_scenario_async(scenario, config=config, resources=resources, tools=tools))
