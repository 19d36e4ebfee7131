"""The actuator layer: the safety envelope, command sources with priorities and leases, the rate
limit, the e-stop, and the built-in tools driving it; real actuators (the simulated base and head,
the log actuator), in a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest

from avagent.core.bus import Bus
from avagent.core.events import Actuator as ActuatorEvent
from avagent.core.events import Estop, EstopCleared, Event, Stop
from avagent.io.actuators import ActuatorRefused, Axis, SimulatedBase, SimulatedHead
from avagent.io.actuators.body import GuardedHead, HubBody
from avagent.io.actuators.envelope import AxisLimits, Envelope, OnLimit
from avagent.io.actuators.hub import ActuatorHub, RateLimit
from avagent.io.actuators.log import LogActuator
from avagent.io.actuators.sources import DEFAULT_SOURCES, commanding_as
from avagent.io.actuators.stage import ActuatorStage
from avagent.io.head import HeadLimits, SimulatedPanTiltHead
from avagent.tools.builtin import builtin_tools
from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import ToolRegistry


class FakeTime:
    """Media time the test moves by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make_hub(
    now: FakeTime, *, on_limit: OnLimit = "clamp", rate: RateLimit | None = None
) -> tuple[ActuatorHub, list[Event]]:
    events: list[Event] = []
    base = SimulatedBase(now=now)
    head = SimulatedHead(SimulatedPanTiltHead(HeadLimits(max_speed_dps=100.0), now))
    hub = ActuatorHub(
        [base, head, LogActuator("arm", axes=("x", "y"))],
        envelopes={
            "base": Envelope({"heading": AxisLimits(max_step=90.0, max_speed=45.0)}, on_limit=on_limit),
            "head": Envelope({"pan": AxisLimits(min=-90.0, max=90.0)}, on_limit=on_limit),
            "arm": Envelope(workspace_radius=1.0, on_limit=on_limit),
        },
        rate_limit=rate,
        now=now,
        publish=events.append,
    )
    return hub, events


# --- the envelope ---------------------------------------------------------------------------------


def test_the_envelope_clamps_each_limit_and_says_why() -> None:
    envelope = Envelope(
        {"pan": AxisLimits(min=-90, max=90, max_step=60, max_speed=30)},
        workspace_radius=2.0,
        on_limit="clamp",
    )
    axes = {"pan": Axis(), "x": Axis("m"), "y": Axis("m")}
    checked = envelope.check("head", axes, {"pan": 40.0}, {"pan": 140.0}, 50.0)
    assert checked.targets == {"pan": 90.0}, "the step (to 100) then the range (to 90)"
    assert checked.speed == 30.0
    assert len(checked.notes) == 3
    assert "a step of 100 deg is more than the 60 deg allowed" in checked.notes[0]
    assert "outside [-90, 90]" in checked.notes[1]
    assert "speed of 50" in checked.notes[2]
    inside = envelope.check("head", axes, {"pan": 0.0}, {"pan": 20.0}, None)
    assert (inside.targets, inside.speed, inside.notes) == ({"pan": 20.0}, 30.0, ())
    far = envelope.check("arm", axes, {}, {"x": 3.0, "y": 4.0}, None)
    assert far.targets == pytest.approx({"x": 1.2, "y": 1.6})
    assert "outside the workspace" in far.notes[0]


def test_the_envelope_refuses_when_so_configured_and_always_refuses_nonsense() -> None:
    strict = Envelope({"pan": AxisLimits(max=90)}, on_limit="refuse")
    axes = {"pan": Axis()}
    with pytest.raises(ActuatorRefused, match=r"120 deg is outside \[-inf, 90\]"):
        strict.check("head", axes, {}, {"pan": 120.0}, None)
    lenient = Envelope()
    with pytest.raises(ActuatorRefused, match="not a finite number"):
        lenient.check("head", axes, {}, {"pan": float("nan")}, None)
    with pytest.raises(ActuatorRefused, match="has no axis 'tilt'"):
        lenient.check("head", axes, {}, {"tilt": 1.0}, None)
    with pytest.raises(ActuatorRefused, match="positive"):
        lenient.check("head", axes, {}, {"pan": 1.0}, -5.0)


# --- the hub --------------------------------------------------------------------------------------


async def test_commands_move_the_actuators_within_the_envelope() -> None:
    now = FakeTime()
    hub, events = make_hub(now)
    checked = await hub.command("base", {"heading": 30.0}, relative=True)
    assert checked.notes == ()
    now.t = 0.5
    assert hub.get("base").reading().position["heading"] == pytest.approx(22.5), "at 45 deg/s, the envelope's"
    limited = await hub.command("base", {"heading": 180.0}, relative=True)
    assert limited.targets["heading"] == pytest.approx(22.5 + 90.0)
    assert "more than the 90 deg allowed" in limited.notes[0]
    moved = [e for e in events if isinstance(e, ActuatorEvent)]
    assert [(e.name, e.cause, e.moving) for e in moved] == [("base", "command", True)] * 2
    now.t = 10.0
    await hub.tick()
    assert isinstance(events[-1], ActuatorEvent)
    assert (events[-1].cause, events[-1].moving) == ("arrived", False)
    assert events[-1].position["heading"] == pytest.approx(112.5)


async def test_a_higher_source_holds_the_actuator_and_lower_ones_are_refused_with_the_reason() -> None:
    now = FakeTime()
    hub, _ = make_hub(now)
    with commanding_as("bus"):
        await hub.command("head", {"pan": 45.0})
    with pytest.raises(ActuatorRefused, match=r"head is held by bus \(priority 30, above voice's 10\)"):
        await hub.command("head", {"pan": -45.0})
    await hub.command("base", {"heading": 10.0}, relative=True)  # another actuator is free
    now.t = DEFAULT_SOURCES["bus"].hold_s + 0.1
    await hub.command("head", {"pan": -45.0})
    follow = GuardedHead(hub, SimulatedPanTiltHead(HeadLimits(), now), "head")
    await follow.point(30.0)
    assert follow.refused == 1, "the follow behaviour yields to the voice"
    now.t += DEFAULT_SOURCES["voice"].hold_s + 0.1
    await follow.point(30.0)
    assert follow.refused == 1
    assert follow.target() == (30.0, 0.0)
    with pytest.raises(ActuatorRefused, match="not a known command source"):
        await hub.command("head", {"pan": 0.0}, source="someone")


async def test_a_motion_from_a_leased_source_stops_when_the_source_goes_silent() -> None:
    now = FakeTime()
    hub, events = make_hub(now)
    with commanding_as("bus"):
        await hub.command("base", {"heading": 90.0}, relative=True, speed=10.0)
    await hub.command("head", {"pan": 80.0})  # the voice's motions have no lease
    lease = DEFAULT_SOURCES["bus"].lease_s
    assert lease is not None
    now.t = lease - 0.5
    await hub.tick()
    assert hub.get("base").reading().moving
    now.t = lease + 0.1
    await hub.tick()
    base = hub.get("base").reading()
    assert not base.moving
    assert base.position["heading"] == pytest.approx(10.0 * (lease + 0.1), abs=0.01)
    assert [e.cause for e in events if isinstance(e, ActuatorEvent) and e.name == "base"][-1] == "lease"


async def test_the_rate_limit_holds_for_every_source() -> None:
    now = FakeTime()
    hub, _ = make_hub(now, rate=RateLimit(calls=3, per_s=1.0))
    for _ in range(3):
        await hub.command("base", {"heading": 1.0}, relative=True)
    with pytest.raises(ActuatorRefused, match="at most 3 commands per 1 s"):
        await hub.command("base", {"heading": 1.0}, relative=True)
    now.t = 1.0
    await hub.command("base", {"heading": 1.0}, relative=True)


async def test_estop_halts_everything_at_once_and_refuses_commands_until_cleared() -> None:
    now = FakeTime()
    hub, events = make_hub(now)
    await hub.command("base", {"heading": 90.0}, relative=True)
    await hub.command("head", {"pan": 80.0})
    now.t = 0.4
    assert await hub.estop("mqtt", "the button")
    assert not await hub.estop("key"), "a second e-stop is the same e-stop"
    base, head = hub.get("base").reading(), hub.get("head").reading()
    assert not base.moving
    assert not head.moving
    assert base.position["heading"] == pytest.approx(18.0)
    assert head.position["pan"] == pytest.approx(40.0)
    now.t = 5.0
    assert hub.get("base").reading().position["heading"] == pytest.approx(18.0), "it stays where it stopped"
    with pytest.raises(ActuatorRefused, match=r"emergency stop is engaged \(from mqtt: the button\)"):
        await hub.command("base", {"heading": 10.0}, relative=True)
    estops = [e for e in events if isinstance(e, Estop)]
    assert [(e.source, e.reason) for e in estops] == [("mqtt", "the button")]
    assert {e.name for e in events if isinstance(e, ActuatorEvent) and e.cause == "estop"} == {
        "base",
        "head",
        "arm",
    }
    assert hub.clear_estop("mqtt")
    assert not hub.clear_estop("mqtt")
    assert isinstance(events[-1], EstopCleared)
    await hub.command("base", {"heading": 10.0}, relative=True)


async def test_an_actuator_that_does_not_confirm_its_stop_is_reported_and_the_others_still_stop() -> None:
    class Stuck(LogActuator):
        async def stop(self) -> None:
            await asyncio.sleep(0.3)
            await super().stop()

    now = FakeTime()
    events: list[Event] = []
    base = SimulatedBase(now=now)
    stuck = Stuck("stuck")
    hub = ActuatorHub([stuck, base], now=now, publish=events.append)
    await hub.command("base", {"heading": 45.0}, relative=True)
    await hub.estop("key")
    assert base.stops == 1
    assert not base.reading().moving
    assert any("stuck has not confirmed its stop" in getattr(e, "message", "") for e in events)
    await asyncio.sleep(0.35)
    assert stuck.stops == 1, "its stop was not cancelled"


# --- the tools and the stage ---------------------------------------------------------------------


async def test_the_builtin_tools_report_limits_refusals_and_the_stop_tool_is_the_estop() -> None:
    now = FakeTime()
    hub, events = make_hub(now)
    executor = ToolExecutor(ToolRegistry(builtin_tools(HubBody(hub))))
    turned = await executor.execute("turn", {"direction": "left", "degrees": 120})
    assert turned.ok
    assert turned.result.startswith("Turning left 90 degrees (base.heading: a step of 120 deg")
    looked = await executor.execute("look_at", {"azimuth_deg": 270})
    assert (looked.ok, looked.result) == (True, "Looking at 270 degrees.")
    stopped = await executor.execute("stop", {})
    assert (stopped.ok, stopped.result) == (True, "Stopping.")
    assert [e.source for e in events if isinstance(e, Estop)] == ["tool"]
    refused = await executor.execute("turn", {"direction": "right"})
    assert not refused.ok
    assert refused.result.startswith("turn was refused: the emergency stop is engaged (from tool")
    hub.clear_estop("key")
    assert (await executor.execute("turn", {"direction": "right"})).ok

    strict, _ = make_hub(FakeTime(), on_limit="refuse")
    tools = ToolExecutor(ToolRegistry(builtin_tools(HubBody(strict))))
    outcome = await tools.execute("turn", {"direction": "left", "degrees": 120})
    assert not outcome.ok
    assert "a step of 120 deg is more than the 90 deg allowed per command" in outcome.result
    assert not strict.get("base").reading().moving


async def test_an_estop_event_overtakes_queued_data_and_halts_the_turning_base() -> None:
    now = FakeTime()
    bus = Bus()
    hub, _ = make_hub(now)
    hub.publish = bus.publish_nowait
    stage = ActuatorStage(bus, hub, ticks="timer")
    task = asyncio.create_task(stage.run())
    await hub.command("base", {"heading": 90.0}, relative=True)
    now.t = 1.0
    await bus.publish(Stop(t=1.0, reason="spoken"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not hub.get("base").reading().moving
    assert not hub.estopped, "a stop halts without latching"
    await hub.command("base", {"heading": 90.0}, relative=True)
    now.t = 1.5
    await bus.publish(Estop(t=1.5, source="key"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert hub.estop_state is not None
    assert hub.estop_state.source == "key"
    assert hub.get("base").reading().position["heading"] == pytest.approx(45.0 + 22.5)
    await bus.publish(EstopCleared(t=2.0, source="key"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not hub.estopped
    bus.close()
    await asyncio.wait_for(task, 1.0)


async def test_a_stage_left_out_of_a_split_agent_is_unsubscribed_and_nothing_queues_for_it() -> None:
    bus = Bus()
    kept = bus.subscribe(Stop, name="actuators.control")
    gone = bus.subscribe(Stop, Estop, name="policy.in")
    other = bus.subscribe(Stop, name="policyish.in")
    assert bus.unsubscribe("policy") == 1
    await bus.publish(Stop(t=1.0))
    assert gone.closed
    assert len(gone) == 0
    assert (len(kept), len(other)) == (1, 1)
    assert [name for name, _types in bus.subscriptions()] == ["actuators.control", "policyish.in"]
