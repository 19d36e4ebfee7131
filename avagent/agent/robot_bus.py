"""The agent on the robot bus: what each command does, which events a part of a split agent
takes from the others, who it watches, and how the policy part calls the actuator tools remotely.

A split agent's parts are nodes ``<agent id>-perception``, ``-policy`` and ``-actuators``; each
publishes its own events, takes from the others the event types its stages read and none of its
own stages makes, and watches the others (their status and heartbeats): a lost part is said aloud
(where there is a voice), reported as an ``error`` event, and engages the actuators' e-stop. The
policy part's ``turn``, ``look_at`` and ``stop`` run in the actuators part, as ``call_tool``
commands answered by acks; the actuators part runs them as the ``voice`` source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiomqtt

from avagent.agent.config import AgentConfig
from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.errors import ConfigError
from avagent.core.events import (
    ActiveSpeaker,
    BargeIn,
    Error,
    Estop,
    EstopCleared,
    Event,
    Faces,
    FirstToken,
    PauseSpeaking,
    ResumeSpeaking,
    Say,
    SoundDirection,
    SpeakingEnded,
    SpeakingStarted,
    Stop,
    ToolCall,
    ToolResult,
    Transcript,
)
from avagent.core.text import one_line
from avagent.io.actuators.sources import command_source, commanding_as
from avagent.io.mqtt.bridge import BridgeSettings, Handler, MqttBridge
from avagent.io.mqtt.commands import Command, CommandFailed, CommandRefused
from avagent.io.mqtt.link import MqttLink, Outgoing
from avagent.io.mqtt.peers import PeerWatch
from avagent.io.mqtt.settings import LinkSettings, Tls, parse_broker_url
from avagent.io.mqtt.topics import Topics, check_node_name, check_prefix
from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import Tool, ToolError, ToolRegistry

if TYPE_CHECKING:
    from avagent.io.actuators.hub import ActuatorHub

log = logging.getLogger("avagent.mqtt")

ACTUATOR_TOOLS = ("turn", "look_at", "stop")
"""The built-in tools that move the robot: in a split agent they run in the actuators part."""

IMPORTS: dict[str, dict[str, tuple[type[Event], ...]]] = {
    "perception": {"policy": (Say, Stop, FirstToken, ToolCall)},
    "policy": {
        "perception": (
            Transcript,
            BargeIn,
            PauseSpeaking,
            ResumeSpeaking,
            Stop,
            SoundDirection,
            Faces,
            ActiveSpeaker,
            SpeakingStarted,
            SpeakingEnded,
        )
    },
    "actuators": {
        "perception": (Estop, EstopCleared, Stop, SoundDirection, ActiveSpeaker),
        "policy": (Estop, EstopCleared, Stop),
    },
}
"""Part -> the other part -> the event types it takes from it."""

LOST_WORDS = {
    "perception": "my ears",
    "policy": "my policy, so I cannot answer",
    "actuators": "my motors",
}


class Parts(Protocol):
    """What the bridge's commands act on (``AgentParts``)."""

    bus: Bus
    clock: MediaClock
    executor: ToolExecutor

    @property
    def listener(self) -> Any: ...


def node_name(config: AgentConfig) -> str:
    """This process's node: the agent id (the host name by default), with the role of a part."""
    m = config.mqtt
    agent = m.agent_id or "".join(c if c.isalnum() or c in "_.-" else "-" for c in socket.gethostname())
    check_node_name(agent)
    return agent if m.role == "all" else check_node_name(f"{agent}-{m.role}")


def link_settings(config: AgentConfig, node: str) -> LinkSettings:
    m = config.mqtt
    assert m.url is not None
    broker = parse_broker_url(m.url)
    if m.username is not None:
        broker = dataclasses.replace(broker, username=m.username)
    password = None
    if m.password_env is not None:
        password = os.environ.get(m.password_env)
        if password is None:
            raise ConfigError(f"mqtt.password_env: the variable {m.password_env} is not set")
    tls = Tls(**m.tls.model_dump()) if m.tls is not None else None
    return LinkSettings(
        broker=broker,
        client_id=f"avagent-{node}",
        password=password,
        tls=tls,
        keepalive_s=m.keepalive_s,
        max_outbox=m.max_outbox,
    )


class RobotBus:
    """The MQTT side of one agent (or part): its link, topics, peers, and remote tool calls."""

    def __init__(
        self,
        config: AgentConfig,
        bus: Bus,
        clock: MediaClock,
        node: str,
        link_factory: Callable[[AgentConfig, str], MqttLink] | None = None,
    ) -> None:
        m = config.mqtt
        self.config = config
        self.bus = bus
        self.clock = clock
        self.role = m.role
        self.agent_id = node[: -len(m.role) - 1] if m.role != "all" else node
        self.topics = Topics(check_prefix(m.prefix), node)
        parts = [f"{self.agent_id}-{r}" for r in ("perception", "policy", "actuators") if r != m.role]
        watched = [*(parts if m.role != "all" else []), *m.watch]
        self.peers = PeerWatch(dict.fromkeys(watched), m.heartbeat_timeout_s, self._peer_changed)
        base = {"node": node, "agent_id": self.agent_id, "role": m.role}
        offline = json.dumps({"state": "offline", **base}).encode()
        self.status_online = {"state": "online", **base, "since": round(time.time(), 3)}
        self.link = (
            link_factory(config, node)
            if link_factory is not None
            else MqttLink(
                link_settings(config, node),
                will=Outgoing(self.topics.status, offline, qos=1, retain=True),
                farewell=Outgoing(self.topics.status, offline, qos=1, retain=True),
                is_control=self._is_control,
            )
        )
        self.link.when_connected(self._online)
        self.hub: ActuatorHub | None = None
        self._pending: dict[str, asyncio.Future[tuple[bool, str]]] = {}
        self._ids = itertools.count(1)
        self._acks_subscribed = False

    def _is_control(self, topic: str) -> bool:
        if self.topics.is_control(topic):
            return True
        return any(
            topic in (t.status, t.event("estop"), t.event("estop_cleared"), t.event("stop"))
            for t in map(self.topics.of, self.peers.peers)
        )

    async def _online(self) -> None:
        self.link.send(self.topics.status, json.dumps(self.status_online).encode(), qos=1, retain=True)

    # --- the bridge -------------------------------------------------------------------------------

    def bridge(self, parts: Parts, hub: ActuatorHub | None) -> MqttBridge:
        """The bridge stage for this agent's ``parts`` (``hub``: its actuator layer, if here)."""
        self.hub = hub
        m = self.config.mqtt
        imports = {f"{self.agent_id}-{other}": types for other, types in IMPORTS.get(self.role, {}).items()}
        self.link.when_disconnected(self._link_lost)
        return MqttBridge(
            self.bus,
            self.link,
            self.topics,
            self._handlers(parts),
            settings=BridgeSettings(
                heartbeat_s=m.heartbeat_s,
                max_payload_bytes=m.max_payload_bytes,
                max_commands_per_s=m.max_commands_per_s,
                max_queued_commands=m.max_queued_commands,
                command_workers=m.command_workers,
            ),
            imports=imports,
            peers=self.peers if self.peers.peers else None,
            produces=(Say, ToolCall, ToolResult, Estop, EstopCleared),
        )

    def _handlers(self, parts: Parts) -> dict[str, Handler]:
        bus, now = self.bus, self.clock.now
        hub = self.hub
        sources = set(self.config.actuators.sources)

        async def say(command: Command) -> str:
            await bus.publish(Say(t=now(), text=str(command.fields["text"])))
            return "saying it"

        async def call_tool(command: Command) -> str:
            name, args = str(command.fields["name"]), dict(command.fields["args"])
            source = str(command.fields.get("source") or "bus")
            if source not in sources:
                raise CommandRefused(f"call_tool: {source!r} is not a known command source")
            call_id = f"mqtt-{command.id}"
            executor = parts.executor
            checked = executor.checked_args(name, args)
            await bus.publish(ToolCall(t=now(), name=name, args=checked or args, call_id=call_id))
            with commanding_as(source):
                outcome = await executor.execute(name, args)
            await bus.publish(
                ToolResult(t=now(), name=name, ok=outcome.ok, result=outcome.result, call_id=call_id)
            )
            if not outcome.ran:
                raise CommandRefused(f"call_tool: {outcome.result}")
            if not outcome.ok:
                raise CommandFailed(outcome.result)
            return outcome.result

        async def mute(command: Command) -> str:
            parts.listener.muted = command.name == "mute"
            return "muted: the agent is not listening" if parts.listener.muted else "listening"

        async def estop(command: Command) -> str:
            reason = str(command.fields.get("reason", ""))
            if hub is not None:
                await hub.estop("mqtt", reason)
                return "every actuator is stopped"
            bus.publish_nowait(Estop(t=now(), source="mqtt", reason=reason))
            return "e-stop passed on to the actuators part"

        async def clear_estop(command: Command) -> str:
            if hub is not None:
                return "e-stop cleared" if hub.clear_estop("mqtt") else "no e-stop was engaged"
            bus.publish_nowait(EstopCleared(t=now(), source="mqtt"))
            return "clearing passed on to the actuators part"

        handlers: dict[str, Handler] = {"estop": estop, "clear_estop": clear_estop}
        if self.role in ("all", "perception", "policy"):
            handlers["say"] = say
        if self.role in ("all", "policy", "actuators"):
            handlers["call_tool"] = call_tool
        if self.role in ("all", "perception"):
            handlers["mute"] = handlers["unmute"] = mute
        return handlers

    # --- losing things ----------------------------------------------------------------------------

    async def _link_lost(self) -> None:
        """This node's own link went down: motions commanded over it stop by themselves."""
        if self.hub is None:
            return
        if self.role == "actuators":
            await self.hub.halt(cause="link")
        else:
            await self.hub.halt_commanded_by(("bus", "call"), cause="link")

    async def _peer_changed(self, node: str, up: bool, why: str) -> None:
        if up:
            log.info("%s is back on the robot bus", node)
            return
        message = one_line(f"{node} {why}")
        log.warning("%s", message)
        self.bus.publish_nowait(Error(t=self.clock.now(), stage="mqtt", message=message))
        if self.hub is not None:
            await self.hub.estop("heartbeat", message)
        if self.role in ("all", "perception"):
            part = node.rsplit("-", 1)[-1]
            what = LOST_WORDS.get(part, node) if node.startswith(f"{self.agent_id}-") else node
            self.bus.publish_nowait(Say(t=self.clock.now(), text=f"I lost contact with {what}."))

    # --- the policy part's actuator tools ---------------------------------------------------------

    def remote_tools(self, registry: ToolRegistry) -> ToolRegistry:
        """``registry`` with its actuator tools run in the actuators part."""
        return ToolRegistry(self._remote(t) if t.name in ACTUATOR_TOOLS else t for t in registry)

    def _remote(self, tool: Tool) -> Tool:
        async def call(**args: Any) -> str:
            return await self.call_remote(tool.name, args, timeout_s=max(0.5, tool.timeout_s - 0.5))

        return dataclasses.replace(tool, fn=call)

    async def call_remote(self, name: str, args: Mapping[str, Any], *, timeout_s: float) -> str:
        """Run tool ``name`` in the actuators part; its result, or ``ToolError`` with why not."""
        target = f"{self.agent_id}-actuators"
        topics = self.topics.of(target)
        if not self._acks_subscribed:
            self._acks_subscribed = True
            self.link.subscribe(topics.ack, self._on_ack, qos=1)
        if self.peers.up(target) is False:
            raise ToolError(f"{name} cannot run: the actuators part ({target}) is offline")
        if not self.link.connected:
            raise ToolError(f"{name} cannot run: the robot bus is not connected")
        command_id = f"{self.topics.node}-{next(self._ids)}"
        body = {
            "id": command_id,
            "name": name,
            "args": dict(args),
            "source": command_source.get(),
            "ttl_ms": int(timeout_s * 1000),
            "ts": round(time.time(), 3),
        }
        future: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            self.link.send(topics.command("call_tool"), json.dumps(body).encode(), qos=1)
            async with asyncio.timeout(timeout_s):
                ok, text = await future
        except TimeoutError:
            raise ToolError(f"{name}: the actuators part did not answer within {timeout_s:g} s") from None
        finally:
            self._pending.pop(command_id, None)
        if not ok:
            raise ToolError(text)
        return text

    async def _on_ack(self, message: aiomqtt.Message) -> None:
        try:
            data = json.loads(message.payload) if isinstance(message.payload, bytes) else None
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        future = self._pending.get(str(data.get("id")))
        if future is not None and not future.done():
            ok = data.get("ok") is True
            future.set_result((ok, one_line(str(data.get("result" if ok else "error", "")), 16_000)))
