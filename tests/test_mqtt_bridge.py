"""The MQTT bridge on a real Mosquitto broker, driven by a second client: events out, commands in
(each run once, answered with an ack), refusals, the e-stop from the bus, and a broker that is
killed and started again mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import sys
import time

import pytest

from avagent.agent.resources import Resources
from avagent.core.events import Actuator as ActuatorEvent
from avagent.core.events import Say
from avagent.io.mqtt.link import MqttLink
from avagent.io.mqtt.settings import BrokerAddress, LinkSettings
from avagent.tools.registry import tool
from tests.mosquitto import Broker, broker
from tests.mqtt_support import agent_on_bus, bus_client, bus_config

__all__ = ["broker"]


async def test_events_go_out_and_commands_run_once_each_with_an_ack(
    broker: Broker, resources: Resources
) -> None:
    config = bus_config(broker.url, "ava")
    async with agent_on_bus(config, resources) as (agent, _), bus_client(broker.port) as bus:
        [status] = await bus.wait_for(lambda s: s.topic == "avagent/ava/status")
        assert (status.data["state"], status.data["role"]) == ("online", "all")
        # Whether the first client saw it live or retained depends on who came first; one that
        # subscribes now must get it from the broker's store.
        async with bus_client(broker.port, "avagent/ava/status") as late:
            [kept] = await late.wait_for(lambda s: s.topic == "avagent/ava/status")
            assert kept.retain
            assert kept.data["state"] == "online"

        await bus.command("ava", "say", {"id": "s1", "text": "Hello from the bus."})
        assert (await bus.ack("ava", "s1"))["ok"]
        [said] = await bus.wait_for(lambda s: s.topic == "avagent/ava/events/say")
        assert said.data["text"] == "Hello from the bus."
        assert isinstance(said.data["t"], float | int)

        for _ in range(3):  # the same id again: answered again, never run again
            await bus.command("ava", "call_tool", {"id": 7, "name": "what_time"})
        acks = await bus.wait_for(lambda s: s.topic == "avagent/ava/ack" and s.data.get("id") == 7, count=3)
        assert all(a.data == acks[0].data for a in acks)
        assert acks[0].data["ok"]
        assert acks[0].data["result"].startswith("It is ")
        await bus.command("ava", "call_tool", {"id": "after", "name": "what_time"})
        await bus.ack("ava", "after")
        results = await bus.wait_for(lambda s: s.topic == "avagent/ava/events/tool_result", count=2)
        await asyncio.sleep(0.2)
        assert [r.data["call_id"] for r in results] == ["mqtt-7", "mqtt-after"]
        assert len(bus.on("avagent/ava/events/tool_result")) == 2, "id 7 ran once"

        old = {"id": "old", "name": "what_time", "ttl_ms": 500, "ts": time.time() - 5.0}
        await bus.command("ava", "call_tool", old)
        expired = await bus.ack("ava", "old")
        assert not expired["ok"]
        assert "expired" in expired["error"]

        listener = agent.parts.listener
        await bus.command("ava", "mute", {"id": "m"})
        assert (await bus.ack("ava", "m"))["result"] == "muted: the agent is not listening"
        muted = listener.muted
        await bus.command("ava", "unmute", {"id": "u"})
        assert (await bus.ack("ava", "u"))["result"] == "listening"
        assert (muted, listener.muted) == (True, False)


async def test_bad_commands_get_an_error_event_and_a_failed_ack_and_nothing_crashes(
    broker: Broker, resources: Resources
) -> None:
    async with agent_on_bus(bus_config(broker.url, "ava"), resources), bus_client(broker.port) as bus:
        await bus.command("ava", "say", None, raw=b'{"id": "x", "text": ')
        await bus.command("ava", "dance", {"id": "d1"})
        await bus.command("ava", "call_tool", {"id": "f1", "name": "fly", "args": {}})
        await bus.command("ava", "call_tool", {"id": "f2", "name": "turn", "args": {"direction": "up"}})
        await bus.command("ava", "say", None, raw=b"[" * 100 + b"]" * 100)
        await bus.command("ava", "say", {"id": "s2", "text": 5})
        await bus.command("ava", "say", {"text": "no id"})
        malformed = await bus.wait_for(
            lambda s: s.topic == "avagent/ava/ack" and s.data["id"] is None, count=3
        )
        reasons = [m.data["error"] for m in malformed]
        assert "not JSON" in reasons[0]
        assert "nested deeper" in reasons[1]
        assert "needs an id" in reasons[2]
        assert "unknown command 'dance'" in (await bus.ack("ava", "d1"))["error"]
        assert "no tool named 'fly'" in (await bus.ack("ava", "f1"))["error"]
        assert "direction" in (await bus.ack("ava", "f2"))["error"]
        assert "give the text to say" in (await bus.ack("ava", "s2"))["error"]
        errors = await bus.wait_for(lambda s: s.topic == "avagent/ava/events/error", count=7)
        messages = " | ".join(e.data["message"] for e in errors)
        for named in ("'d1'", "'f1'", "'f2'", "'s2'"):
            assert named in messages
        await bus.command("ava", "call_tool", {"id": "ok", "name": "what_time"})
        assert (await bus.ack("ava", "ok"))["ok"], "the bridge still works"


async def test_estop_from_the_bus_halts_the_turning_base_ahead_of_queued_commands(
    broker: Broker, resources: Resources
) -> None:
    config = bus_config(broker.url, "ava", mqtt={"max_commands_per_s": 1000})
    async with agent_on_bus(config, resources) as (agent, _), bus_client(broker.port) as bus:
        robot = agent.parts.robot
        assert robot is not None
        assert robot.hub is not None
        base = robot.hub.get("base")
        await bus.command(
            "ava", "call_tool", {"id": "t1", "name": "turn", "args": {"degrees": 360, "direction": "left"}}
        )
        assert (await bus.ack("ava", "t1"))["ok"]
        assert base.reading().moving

        @tool
        async def linger() -> str:
            """Takes its time."""
            await asyncio.sleep(0.5)
            return "done"

        agent.tools.register(linger)
        # Every worker busy, thirty commands queued behind them, then the e-stop, all in one burst.
        await asyncio.gather(
            *(bus.command("ava", "call_tool", {"id": f"slow{i}", "name": "linger"}) for i in range(8)),
            *(bus.command("ava", "call_tool", {"id": f"q{i}", "name": "what_time"}) for i in range(30)),
            bus.command("ava", "estop", {"id": "e1", "reason": "the red button"}),
        )
        stopped = await bus.ack("ava", "e1")
        assert stopped["ok"]
        assert not base.reading().moving
        heading = base.reading().position["heading"]
        await asyncio.sleep(0.3)
        assert base.reading().position["heading"] == heading, "it stays halted"
        [estop] = await bus.wait_for(lambda s: s.topic == "avagent/ava/events/estop")
        assert (estop.data["source"], estop.data["reason"]) == ("mqtt", "the red button")
        halted = await bus.wait_for(
            lambda s: s.topic == "avagent/ava/events/actuator" and s.data["cause"] == "estop", count=2
        )
        assert {h.data["name"] for h in halted} == {"base", "head"}
        await bus.ack("ava", "q29")
        acks = [s.data["id"] for s in bus.seen if s.topic == "avagent/ava/ack"]
        first_queued = min(acks.index(f"q{i}") for i in range(30))
        assert acks.index("e1") < first_queued, "the e-stop did not wait behind the busy queue"

        await bus.command("ava", "call_tool", {"id": "t2", "name": "turn", "args": {"direction": "right"}})
        refused = await bus.ack("ava", "t2")
        assert not refused["ok"]
        assert "emergency stop is engaged (from mqtt" in refused["error"]
        await bus.command("ava", "clear_estop", {"id": "c1"})
        assert (await bus.ack("ava", "c1"))["result"] == "e-stop cleared"
        await bus.wait_for(lambda s: s.topic == "avagent/ava/events/estop_cleared")
        await bus.command("ava", "call_tool", {"id": "t3", "name": "turn", "args": {"direction": "right"}})
        assert (await bus.ack("ava", "t3"))["ok"]


@pytest.mark.slow
async def test_the_broker_killed_and_restarted_mid_run_loses_no_accepted_command(
    broker: Broker, resources: Resources
) -> None:
    async with agent_on_bus(bus_config(broker.url, "ava"), resources) as (agent, recorder):
        robot = agent.parts.robot
        assert robot is not None
        assert robot.bus_link is not None
        link = robot.bus_link.link
        async with bus_client(broker.port) as bus:
            await bus.command("ava", "call_tool", {"id": "before", "name": "what_time"})
            assert (await bus.ack("ava", "before"))["ok"]
            await bus.command(
                "ava",
                "call_tool",
                {"id": "moving", "name": "turn", "args": {"direction": "left", "degrees": 360}},
            )
            await bus.ack("ava", "moving")
        assert robot.hub is not None
        base = robot.hub.get("base")
        assert base.reading().moving
        broker.kill()
        for _ in range(100):
            if not link.connected:
                break
            await asyncio.sleep(0.02)
        assert not link.connected
        assert not base.reading().moving, "a motion commanded over the bus stops when the link is lost"
        for i in range(20):  # meanwhile the agent goes on; its events are dropped and counted
            agent.bus.publish_nowait(Say(t=agent.clock.now(), text=f"while the broker is down {i}"))
        await asyncio.sleep(0.2)
        assert link.dropped >= 20
        for _ in range(200):  # after three failures its retries are a second or more apart
            if link.failures >= 3:
                break
            await asyncio.sleep(0.05)
        assert link.failures >= 3
        connections = link.connections
        broker.start()
        async with bus_client(broker.port) as bus:
            # Accepted by the broker (QoS 1) while the agent is still away: kept for its session.
            await bus.command("ava", "call_tool", {"id": "during", "name": "what_time"})
            await bus.command("ava", "say", {"id": "said", "text": "I am back."})
            assert link.connections == connections, "sent while the agent was away"
            assert (await bus.ack("ava", "during", within_s=20.0))["ok"]
            assert (await bus.ack("ava", "said"))["ok"]
            assert link.connections == connections + 1
            [overflow] = await bus.wait_for(
                lambda s: s.topic == "avagent/ava/events/overflow" and s.data["stream"] == "mqtt.link"
            )
            assert overflow.data["dropped"] >= 20
        async with bus_client(broker.port) as late:
            [status] = await late.wait_for(lambda s: s.topic == "avagent/ava/status")
            assert (status.retain, status.data["state"]) == (True, "online")
    halts = [e for e in recorder.events if isinstance(e, ActuatorEvent) and e.cause == "link"]
    assert [h.name for h in halts] == ["base"], "only the motion the bus commanded"
    assert json.dumps([e.to_dict() for e in recorder.events])  # everything it published is the contract


def test_a_link_stopped_while_connecting_leaves_nothing_open(
    broker: Broker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped at any moment of its connection attempt (to a broker, or to a port that accepts and
    never answers), the link closes its socket before its loop ends: nothing is left for the
    garbage collector to close against a closed loop."""
    leaks: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: leaks.append(f"{u.exc_value!r} in {u.object!r}"))

    async def stop_after(port: int, delay_s: float) -> float:
        link = MqttLink(LinkSettings(BrokerAddress("127.0.0.1", port, tls=False), client_id="leak"))
        task = asyncio.create_task(link.run())
        await asyncio.sleep(delay_s)
        task.cancel()
        began = time.monotonic()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return time.monotonic() - began

    for step in range(24):
        asyncio.run(stop_after(broker.port, step * 0.0005))
        gc.collect()
    with socket.create_server(("127.0.0.1", 0)) as silent:
        stopped_in = asyncio.run(stop_after(silent.getsockname()[1], 0.3))
        gc.collect()
    assert leaks == []
    assert "destroyed but it is pending" not in caplog.text
    assert stopped_in < 5.0, "a broker that never answers does not hold the stop for its timeout"
