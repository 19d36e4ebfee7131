"""Robot bus figures, as JSON (bench/results/bus.json and stdout), on a real Mosquitto broker
started here on a loopback port.

1. Events per second the MQTT bridge sustains while perception runs (a spoken scene paced in real
   time: VAD, turns, recognition): bursts of events put on the agent's bus, counted where a second
   client receives them. Baseline, measured in the same run: a bare aiomqtt client publishing to
   another through the same broker.
2. Command round trip, bus -> tool -> ack: ``call_tool what_time`` published by a second client,
   until its ack arrives, p50/p95. Baseline: a bare QoS 1 round trip through the broker.
3. E-stop while the agent is busy (a long answer being spoken, a slow tool running on a thread,
   perception at full rate): ``cmd/estop`` published while the simulated base turns, until every
   actuator has halted: the simulated base and head (their ``stop()``), and an MQTT actuator, whose
   motor controller (another client) must receive its stop message. p50/p99; target p99 <= 50 ms.

    .venv/bin/python bench/bus.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np

from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.files import FileRun
from avagent.agent.resources import Resources
from avagent.core.events import Transcript
from avagent.io.actuators import SimulatedBase
from avagent.io.actuators.hub import ActuatorHub
from avagent.sim.scene import synthesize_scene
from avagent.tools.registry import tool

RESULTS = Path(__file__).parent / "results" / "bus.json"
LONG_ANSWER = " ".join(
    f"This is sentence {i} of a long answer, spoken while the bench runs." for i in range(25)
)
"""About two minutes of speech, within the 2,000 characters a ``say`` command may carry."""


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": int(a.size),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
    }


@contextlib.contextmanager
def mosquitto() -> Iterator[int]:
    """A broker on a free loopback port, for the length of the block."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as folder, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        s.close()
        config = Path(folder) / "mosquitto.conf"
        user = f"user {getpass.getuser()}\n" if os.geteuid() == 0 else ""
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
            # As docs/robot.md advises: small messages (an e-stop) are not held back by Nagle's algorithm.
            f"set_tcp_nodelay true\n{user}"
        )
        process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        try:
            for _ in range(500):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                    break
                time.sleep(0.01)
            yield port
        finally:
            process.terminate()
            process.wait(5)


class Inbox:
    """A client's received messages: when each arrived, by topic."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.arrivals: dict[str, list[tuple[float, bytes]]] = {}
        self.waiters: dict[str, list[tuple[Any, asyncio.Future[float]]]] = {}

    async def collect(self) -> None:
        async for message in self.client.messages:
            now = time.perf_counter()
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.arrivals.setdefault(topic, []).append((now, payload))
            for match, future in list(self.waiters.get(topic, [])):
                if not future.done() and match(payload):
                    future.set_result(now)

    def expect(self, topic: str, match: Any = lambda _p: True) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(topic, []).append((match, future))
        return future

    def count(self, topic: str, marked: bytes = b"") -> int:
        """Messages on ``topic`` (only those whose payload holds ``marked``, when given)."""
        return sum(marked in payload for _t, payload in self.arrivals.get(topic, []))


@contextlib.asynccontextmanager
async def client(port: int, *topics: str) -> AsyncIterator[Inbox]:
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    async with aiomqtt.Client("127.0.0.1", port, max_queued_incoming_messages=0, socket_options=nodelay) as c:
        for topic in topics:
            await c.subscribe(topic, qos=1)
        inbox = Inbox(c)
        task = asyncio.create_task(inbox.collect())
        try:
            yield inbox
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


# --- baselines ----------------------------------------------------------------------------------


async def baseline_throughput(port: int, n: int) -> dict[str, float]:
    async with client(port, "bench/raw") as receiver, client(port) as sender:
        start = time.perf_counter()
        for i in range(n):
            await sender.client.publish("bench/raw", b'{"type": "transcript", "t": 1.0, "text": "x"}', qos=0)
            if i % 200 == 0:
                await asyncio.sleep(0)
        for _ in range(1000):  # up to 10 s
            if receiver.count("bench/raw") >= n:
                break
            await asyncio.sleep(0.01)
        arrivals = receiver.arrivals.get("bench/raw", [])
        took = (arrivals[-1][0] if arrivals else time.perf_counter()) - start
        return {"messages": n, "received": len(arrivals), "per_s": round(len(arrivals) / took, 1)}


async def baseline_round_trip(port: int, n: int) -> dict[str, float]:
    times = []
    async with client(port, "bench/echo") as inbox:
        for i in range(n):
            arrived = inbox.expect("bench/echo", lambda p, i=i: p == str(i).encode())
            start = time.perf_counter()
            await inbox.client.publish("bench/echo", str(i).encode(), qos=1)
            times.append((await arrived - start) * 1000)
    return stats(times)


# --- the agent ----------------------------------------------------------------------------------


def agent_config(port: int) -> AgentConfig:
    return parse_config(
        {
            "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "agent_id": "bench", "max_commands_per_s": 10_000},
            "actuators": {
                "devices": {
                    "base": {"type": "simulated_base"},
                    "head": {"type": "simulated_head"},
                    "wheels": {"type": "mqtt", "options": {"topic": "bench/wheels", "axes": ["heading"]}},
                },
                "rate_limit": None,
            },
        }
    )


class TimedBase(SimulatedBase):
    """The simulated base, noting when it was stopped."""

    stopped_at = 0.0

    async def stop(self) -> None:
        self.stopped_at = time.perf_counter()
        await super().stop()


RELEASE = threading.Event()
"""Set: the busy tools return."""


def wait(seconds: float) -> str:
    """A plain tool waiting on its thread (a slow request to another machine)."""
    RELEASE.wait(seconds)
    return "waited"


def spin(seconds: float) -> str:
    """A plain tool that keeps a core (and the GIL, between switches) busy: the worst a tool can do."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end and not RELEASE.is_set():
        x += sum(range(1000))
    return str(x)


async def busy_agent(port: int, scene_path: Path, resources: Resources, trials: int) -> dict[str, Any]:
    run = FileRun(scene_path, agent_config(port), resources=resources, realtime=True, keep=False)
    agent = run.agent
    robot = agent.parts.robot
    assert robot is not None
    assert robot.hub is not None
    assert robot.bus_link is not None
    hub: ActuatorHub = robot.hub
    base = TimedBase("base", now=agent.clock.now)
    hub.actuators["base"] = base
    agent.tools.register(tool(timeout_s=4000.0)(wait))
    agent.tools.register(tool(timeout_s=4000.0)(spin))
    task = asyncio.create_task(run.run())
    figures: dict[str, Any] = {}
    async with client(port, "avagent/bench/#", "bench/wheels/cmd") as bus:
        await asyncio.wait_for(robot.bus_link.link.wait_connected(), 10.0)

        async def command(name: str, body: dict[str, Any]) -> float:
            acked = bus.expect("avagent/bench/ack", lambda p: json.loads(p).get("id") == body["id"])
            start = time.perf_counter()
            await bus.client.publish(f"avagent/bench/cmd/{name}", json.dumps(body).encode(), qos=1)
            return (await asyncio.wait_for(acked, 10.0)) - start

        # 1. Events the bridge sustains while perception runs.
        await asyncio.sleep(1.0)
        burst, bursts = 200, max(20, trials)
        topic = "avagent/bench/events/transcript"
        # Perception goes on meanwhile and publishes transcripts of its own: count the bursts only.
        mark = b'"burst '
        before = bus.count(topic, mark)
        start = time.perf_counter()
        link = robot.bus_link.link
        dropped_before = link.dropped
        for b in range(bursts):
            for i in range(burst):
                agent.bus.publish_nowait(Transcript(t=agent.clock.now(), text=f"burst {b} {i}", final=False))
            # As fast as the bridge takes them: the next burst once most of this one is out.
            for _ in range(10_000):
                await asyncio.sleep(0.001)
                if link.queued < burst // 2:
                    break
        sent = burst * bursts
        for _ in range(1000):  # up to 10 s
            if bus.count(topic, mark) - before >= sent:
                break
            await asyncio.sleep(0.01)
        got = bus.count(topic, mark) - before
        last = bus.arrivals[topic][-1][0] if got else time.perf_counter()
        figures["events"] = {
            "sent": sent,
            "received": got,
            "per_s": round(got / (last - start), 1),
            "dropped": sent - got,
            "dropped_by_the_link": link.dropped - dropped_before,
        }

        # 2. Command round trip, bus -> tool -> ack.
        trips = [
            await command("call_tool", {"id": f"rt{i}", "name": "what_time"}) * 1000 for i in range(trials)
        ]
        figures["command_round_trip"] = stats(trips)

        # 3. E-stop while busy: a long answer spoken, a tool running, perception at full rate.
        await command("say", {"id": "long", "text": LONG_ANSWER})
        said = [json.loads(p) for _t, p in bus.arrivals.get("avagent/bench/ack", []) if b'"long"' in p]
        if not said or not said[-1]["ok"]:
            raise RuntimeError(f"the long answer was not taken: {said}")

        async def estops(tool_name: str, n: int) -> dict[str, Any]:
            RELEASE.clear()
            body = {"id": f"busy-{tool_name}", "name": tool_name, "args": {"seconds": 3600}}
            done = bus.expect("avagent/bench/ack", lambda p: json.loads(p).get("id") == body["id"])
            await bus.client.publish("avagent/bench/cmd/call_tool", json.dumps(body).encode(), qos=1)
            await asyncio.sleep(0.5)
            halts, inside, controller = [], [], []
            speaking = 0
            for i in range(n):
                speaking += agent.parts.speech_out.busy
                await hub.command("base", {"heading": 180.0}, relative=True, source="voice")
                await hub.command("head", {"pan": random.uniform(-90, 90)}, source="voice")
                await hub.command("wheels", {"heading": 90.0}, relative=True, source="voice")
                await asyncio.sleep(random.uniform(0.05, 0.15))
                stop_seen = bus.expect("bench/wheels/cmd", lambda p: json.loads(p).get("op") == "stop")
                start = time.perf_counter()
                await bus.client.publish(
                    "avagent/bench/cmd/estop", json.dumps({"id": f"e-{tool_name}{i}"}).encode(), qos=1
                )
                at_controller = await asyncio.wait_for(stop_seen, 10.0)
                head_stopped = not hub.get("head").reading().moving
                if not (base.stopped_at >= start and head_stopped and not base.reading().moving):
                    raise RuntimeError("the e-stop did not halt every actuator")
                inside.append((base.stopped_at - start) * 1000)
                controller.append((at_controller - start) * 1000)
                halts.append((max(at_controller, base.stopped_at) - start) * 1000)
                await command("clear_estop", {"id": f"c-{tool_name}{i}"})
            busy = {"speaking_during_trials": speaking, "tool_running": not done.done(), "tool": tool_name}
            RELEASE.set()
            await asyncio.wait_for(done, 10.0)
            return {
                "all_halted": stats(halts),
                "in_process_halted": stats(inside),
                "at_motor_controller": stats(controller),
                "busy": busy,
            }

        # A tool waiting on its thread (a request): the common case; then one spinning a core in
        # pure Python, which holds the GIL between switches (every 5 ms): the worst case.
        figures["estop"] = await estops("wait", trials)
        figures["estop_with_a_cpu_bound_tool"] = await estops("spin", trials)
        figures["estop_target_p99_ms"] = 50.0
        figures["perception_chunks"] = agent.parts.listener.chunks
    await agent.stop()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, 10.0)
    return figures


async def main(quick: bool) -> dict[str, Any]:
    trials = 40 if quick else 200
    phrases = ["turn left", "what time is it", "look at ninety degrees", "say good morning"] * (
        2 if quick else 8
    )
    scene = synthesize_scene(phrases, gap_s=1.5, snr_db=20.0, seed=11, tail_s=60.0 if quick else 180.0)
    with tempfile.TemporaryDirectory() as folder, mosquitto() as port:
        path = scene.write(Path(folder) / "scene.wav")
        resources = Resources(AgentConfig())
        await resources.start()
        try:
            figures: dict[str, Any] = {
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "quick": quick,
                "baseline_mqtt_throughput": await baseline_throughput(port, 5000 if quick else 20000),
                "baseline_mqtt_round_trip": await baseline_round_trip(port, trials),
            }
            figures.update(await busy_agent(port, path, resources, trials))
        finally:
            await resources.stop()
    figures["events"]["share_of_baseline"] = round(
        figures["events"]["per_s"] / figures["baseline_mqtt_throughput"]["per_s"], 3
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer trials, a shorter scene (a check that it runs)"
    )
    args = parser.parse_args()
    figures = asyncio.run(main(args.quick))
    if not args.quick:
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    json.dump(figures, sys.stdout, indent=2)
    print()
