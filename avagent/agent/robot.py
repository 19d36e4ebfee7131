"""The robot side of one agent: its actuators behind the actuator layer, the robot bus, and which
part of a split agent this process runs.

``build_robot`` reads the ``actuators:`` and ``mqtt:`` sections (and ``head:`` for the simulated
head's limits): it makes each configured actuator (built in, or a plug-in from the entry-point
group ``avagent.actuators``), puts them behind one ``ActuatorHub`` with their envelopes, the
command sources and the rate limit, and gives the tools a ``Body`` and the follow behaviour a head
that go through it. ``Robot.attach`` adds the actuator stage and the MQTT bridge to the agent's
parts and, for a split agent, leaves out the stages that run in the other parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from avagent.agent.config import AgentConfig
from avagent.agent.robot_bus import Parts, RobotBus, node_name
from avagent.agent.robot_config import ActuatorsConfig, Role
from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.stage import Stage
from avagent.io.actuators.base import ActuatorRefused, Body, Limited
from avagent.io.actuators.body import GuardedHead, HubBody
from avagent.io.actuators.envelope import AxisLimits, Envelope
from avagent.io.actuators.hub import ActuatorHub, RateLimit
from avagent.io.actuators.registry import ActuatorContext, make_actuator
from avagent.io.actuators.sources import Source
from avagent.io.actuators.stage import ActuatorStage
from avagent.io.head import HeadLimits, PanTiltHead, SimulatedPanTiltHead
from avagent.io.mqtt.link import MqttLink
from avagent.tools.registry import ToolRegistry

ROLE_STAGES: dict[str, frozenset[str]] = {
    "perception": frozenset(
        {"listener", "asr", "speech_out", "trace", "doa", "camera", "video_file", "faces", "active_speaker"}
    ),
    "policy": frozenset({"policy"}),
    "actuators": frozenset({"actuators", "follow_speaker"}),
}
"""The stages each part of a split agent runs; a stage no part names runs in every part."""


class Assembled(Parts, Protocol):
    """What ``Robot.attach`` needs of the agent's parts (``AgentParts``)."""

    extra: list[Stage]
    absent: set[str]

    def built_stages(self) -> list[Stage]: ...


def head_limits(config: AgentConfig) -> HeadLimits:
    h = config.head
    return HeadLimits(**h.model_dump(exclude={"enabled", "hysteresis_deg", "min_confidence"}))


def envelopes(config: ActuatorsConfig) -> dict[str, Envelope]:
    return {
        name: Envelope(
            axes={axis: AxisLimits(**lim.model_dump()) for axis, lim in device.limits.items()},
            workspace_radius=device.workspace_radius,
            on_limit=config.on_limit,
        )
        for name, device in config.devices.items()
    }


def sources(config: ActuatorsConfig) -> dict[str, Source]:
    return {name: Source(**s.model_dump()) for name, s in config.sources.items()}


class ElsewhereBody:
    """The body of a part that has no actuators: every move is refused, saying where they are."""

    async def turn(self, degrees: float) -> Limited | None:
        raise ActuatorRefused("the actuators run in another part of this agent")

    async def look_at(self, azimuth_deg: float) -> Limited | None:
        raise ActuatorRefused("the actuators run in another part of this agent")

    async def stop(self) -> None:
        return None


@dataclass
class Robot:
    """What ``build_robot`` made for one agent."""

    role: Role
    body: Body
    head: PanTiltHead
    """The head the spatial stages see (the simulated one: its pose is where the head would be)."""
    follow_head: PanTiltHead | None = None
    """The head the follow behaviour points: through the actuator layer."""
    hub: ActuatorHub | None = None
    stage: ActuatorStage | None = None
    bus_link: RobotBus | None = None

    def tools(self, registry: ToolRegistry) -> ToolRegistry:
        """The agent's tools: the policy part of a split agent calls the actuator tools remotely."""
        if self.bus_link is not None and self.role == "policy":
            return self.bus_link.remote_tools(registry)
        return registry

    def attach(self, parts: Assembled) -> None:
        """Run the actuator stage and the bridge with the agent; leave out the other parts' stages."""
        if self.stage is not None:
            parts.extra.append(self.stage)
        if self.role != "all":
            others = set().union(*(names for role, names in ROLE_STAGES.items() if role != self.role))
            for stage in parts.built_stages():
                if stage.name in others:
                    parts.absent.add(stage.name)
                    parts.bus.unsubscribe(stage.name)
        if self.bus_link is not None:
            parts.extra.append(self.bus_link.bridge(parts, self.hub))


def build_robot(
    config: AgentConfig,
    bus: Bus,
    clock: MediaClock,
    *,
    realtime: bool,
    head: PanTiltHead | None = None,
    link_factory: Callable[[AgentConfig, str], MqttLink] | None = None,
) -> Robot:
    """The actuators, the actuator layer and the robot bus ``config`` asks for. ``realtime``: the
    hub is watched on a timer (else on each audio frame, so that a file fed as fast as possible
    gives the same events on any machine)."""
    role = config.mqtt.role
    head = head if head is not None else SimulatedPanTiltHead(head_limits(config), clock.now)
    bus_link = RobotBus(config, bus, clock, node_name(config), link_factory) if config.mqtt.url else None
    robot = Robot(role=role, body=ElsewhereBody(), head=head, bus_link=bus_link)
    if role not in ("all", "actuators"):
        return robot
    a = config.actuators
    context = ActuatorContext(now=clock.now, head=head, link=bus_link.link if bus_link is not None else None)
    actuators = [make_actuator(name, d.type, d.options, context) for name, d in a.devices.items()]
    hub = ActuatorHub(
        actuators,
        envelopes=envelopes(a),
        sources=sources(a),
        rate_limit=RateLimit(a.rate_limit.calls, a.rate_limit.per_s) if a.rate_limit is not None else None,
        now=clock.now,
        publish=bus.publish_nowait,
    )
    robot.hub = hub
    robot.body = HubBody(hub, base=a.base, head=a.head)
    if a.head is not None:
        robot.follow_head = GuardedHead(hub, head, a.head)
    robot.stage = ActuatorStage(bus, hub, ticks="timer" if realtime else "frames")
    return robot
