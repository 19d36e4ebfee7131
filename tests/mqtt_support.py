"""A second MQTT client that watches the robot bus and sends commands, and an agent on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.resources import Resources
from avagent.core.recorder import EventRecorder
from avagent.io.wall_clock import WallClockSource


@dataclass(frozen=True)
class Seen:
    topic: str
    data: Any
    retain: bool
    at: float


class BusClient:
    """Subscribes to everything under ``avagent/``, keeps it, and publishes commands."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[Seen] = []
        self._changed = asyncio.Condition()

    async def _collect(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            try:
                data: Any = json.loads(payload)
            except ValueError:
                data = payload
            async with self._changed:
                self.seen.append(Seen(message.topic.value, data, bool(message.retain), time.monotonic()))
                self._changed.notify_all()

    async def wait_for(
        self, match: Callable[[Seen], bool], within_s: float = 10.0, count: int = 1
    ) -> list[Seen]:
        """The first ``count`` messages that ``match``, waiting for them up to ``within_s`` seconds."""
        async with asyncio.timeout(within_s), self._changed:
            while len(found := [s for s in self.seen if match(s)]) < count:
                await self._changed.wait()
        return found[:count]

    def on(self, topic: str) -> list[Any]:
        return [s.data for s in self.seen if s.topic == topic]

    async def command(self, node: str, name: str, body: Any, *, raw: bytes | None = None) -> None:
        payload = raw if raw is not None else json.dumps(body).encode()
        await self.client.publish(f"avagent/{node}/cmd/{name}", payload, qos=1)

    async def ack(self, node: str, command_id: Any, within_s: float = 10.0) -> dict[str, Any]:
        [seen] = await self.wait_for(
            lambda s: (
                s.topic == f"avagent/{node}/ack"
                and isinstance(s.data, dict)
                and s.data.get("id") == command_id
            ),
            within_s,
        )
        data: dict[str, Any] = seen.data
        return data


@contextlib.asynccontextmanager
async def bus_client(port: int, topic: str = "avagent/#") -> AsyncIterator[BusClient]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=None) as client:
        watcher = BusClient(client)
        await client.subscribe(topic, qos=1)
        task = asyncio.create_task(watcher._collect())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


def bus_config(url: str, agent_id: str, **sections: Any) -> AgentConfig:
    return parse_config({"mqtt": {"url": url, "agent_id": agent_id, **sections.pop("mqtt", {})}, **sections})


@contextlib.asynccontextmanager
async def agent_on_bus(
    config: AgentConfig, resources: Resources
) -> AsyncIterator[tuple[Agent, EventRecorder]]:
    """An agent with no microphone on the robot bus, running until the block ends."""
    agent = Agent(config, resources=resources, realtime=True)
    recorder = EventRecorder(agent.bus)
    agent.add_stage(recorder)
    task = asyncio.create_task(agent.run(WallClockSource(agent.clock)))
    robot = agent.parts.robot
    assert robot is not None
    assert robot.bus_link is not None
    try:
        async with asyncio.timeout(10.0):
            await robot.bus_link.link.wait_connected()
        yield agent, recorder
    finally:
        await agent.stop()
        await asyncio.wait_for(task, 10.0)
