"""The demo's safety act: the envelope clamps a turn that asks too much, "stop" is the emergency
stop, a turn is refused while it is engaged, and after the operator clears it turns work again.
None of it goes through a model: the rules live in the actuator layer."""

from __future__ import annotations

from pathlib import Path

from avagent.agent.agent import Agent
from avagent.agent.config import parse_config
from avagent.cli.demo.act import heading, run_act
from avagent.sim.operator import ScriptedOperator
from avagent.sim.scene import synthesize_scene

SAID = ["turn left ninety degrees", "stop", "turn right", "turn right"]
MAX_STEP_DEG = 45.0


async def run_safety(out: Path, *, seed: int = 7) -> bool:
    heading(
        "safety",
        f"the base turns at most {MAX_STEP_DEG:g} degrees a command; 'stop' is the e-stop; the operator "
        "clears it before the last command",
    )
    scene = synthesize_scene(SAID, gap_s=3.0, snr_db=25.0, seed=seed)
    audio = scene.write(out / "scene.wav")
    # The operator clears the e-stop between the third and the fourth command.
    clear_at = (scene.phrases[2].end + scene.phrases[3].start) / 2
    config = parse_config(
        {
            "actuators": {
                "devices": {
                    "base": {"type": "simulated_base", "limits": {"heading": {"max_step": MAX_STEP_DEG}}},
                    "head": {"type": "simulated_head"},
                }
            }
        }
    )

    def operator(agent: Agent) -> None:
        robot = agent.parts.robot
        assert robot is not None
        assert robot.hub is not None
        hub = robot.hub
        # As the clear key of a terminal does it: straight to the actuators, not through the policy.
        agent.add_stage(ScriptedOperator(agent.bus, [(clear_at, lambda: hub.clear_estop("key"))]))

    result = await run_act(audio, out, config, setup=operator)
    results = [(r["name"], r["ok"], r["result"]) for r in result.of_type("tool_result")]
    names = [name for name, _ok, _text in results]
    result.check(f"the four commands call {names}", names == ["turn", "stop", "turn", "turn"])
    if names == ["turn", "stop", "turn", "turn"]:
        clamped, _stop, refused, after = results
        result.check(
            f'"turn left ninety degrees" is clamped: "{clamped[2]}"', clamped[1] and "45" in clamped[2]
        )
        result.check(f'"turn right" while stopped is refused: "{refused[2]}"', not refused[1])
        result.check(f'after the operator clears the e-stop, "turn right": "{after[2]}"', after[1])
    estops = result.of_type("estop")
    result.check(f"the e-stop came from the stop tool: {[e['source'] for e in estops]}", len(estops) == 1)
    result.check("the operator cleared it", len(result.of_type("estop_cleared")) == 1)
    return result.ok
