"""The robot's config sections: ``actuators:`` (what the agent moves and the envelope around it)
and ``mqtt:`` (the robot bus, and which part of a split agent this process is). See docs/robot.md.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from avagent.agent.settings import Section


class AxisLimitConfig(Section):
    """The envelope of one axis, in its unit (degrees, metres); null: no limit."""

    min: float | None = None
    max: float | None = None
    max_step: float | None = Field(default=None, gt=0.0)
    """The largest change one command may ask, from where the axis is."""
    max_speed: float | None = Field(default=None, gt=0.0)
    """Units per second; also the speed of a command that names none."""

    @model_validator(mode="after")
    def _ordered(self) -> AxisLimitConfig:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        return self


class ActuatorDeviceConfig(Section):
    """One actuator: its type (built in: ``simulated_base``, ``simulated_head``, ``log``, ``mqtt``;
    or a plug-in's entry-point name), its envelope, and the plug-in's own options."""

    type: str
    limits: dict[str, AxisLimitConfig] = Field(default_factory=dict)
    workspace_radius: float | None = Field(default=None, gt=0.0)
    """Its ``x`` and ``y`` axes stay within this distance of the origin."""
    options: dict[str, Any] = Field(default_factory=dict)


class SourceConfig(Section):
    """A command source: higher ``priority`` wins; it holds what it moved for ``hold_s``; with a
    ``lease_s`` its motions stop by themselves unless commanded again within that time."""

    priority: int = Field(ge=0, le=1000)
    hold_s: float = Field(default=2.0, ge=0.0, le=3600.0)
    lease_s: float | None = Field(default=None, gt=0.0, le=3600.0)


class ActuatorRateConfig(Section):
    calls: int = Field(ge=1)
    per_s: float = Field(gt=0.0)


def _default_devices() -> dict[str, ActuatorDeviceConfig]:
    return {
        "base": ActuatorDeviceConfig(
            type="simulated_base", limits={"heading": AxisLimitConfig(max_step=360.0, max_speed=90.0)}
        ),
        "head": ActuatorDeviceConfig(
            type="simulated_head",
            limits={
                "pan": AxisLimitConfig(min=-170.0, max=170.0),
                "tilt": AxisLimitConfig(min=-30.0, max=30.0),
            },
        ),
    }


def _default_sources() -> dict[str, SourceConfig]:
    return {
        "follow": SourceConfig(priority=0, hold_s=0.0),
        "voice": SourceConfig(priority=10),
        "call": SourceConfig(priority=20, lease_s=5.0),
        "bus": SourceConfig(priority=30, lease_s=5.0),
    }


REQUIRED_SOURCES = ("follow", "voice", "bus")


class ActuatorsConfig(Section):
    """What the agent moves, and the rules every command to it obeys (outside any model)."""

    devices: dict[str, ActuatorDeviceConfig] = Field(default_factory=_default_devices)
    base: str | None = "base"
    """The actuator the ``turn`` tool drives (its ``heading`` axis); null: none."""
    head: str | None = "head"
    """The actuator ``look_at`` and following the speaker drive (``pan``, ``tilt``); null: none."""
    on_limit: Literal["clamp", "refuse"] = "clamp"
    """A command beyond the envelope is clamped to it (and the result says so) or refused."""
    rate_limit: ActuatorRateConfig | None = Field(
        default_factory=lambda: ActuatorRateConfig(calls=20, per_s=1.0)
    )
    """Commands to one actuator, whatever their source."""
    sources: dict[str, SourceConfig] = Field(default_factory=_default_sources)
    estop_keys: bool = True
    """``avagent run`` on a terminal: space or ``e`` engages the e-stop, ``c`` clears it."""

    @model_validator(mode="after")
    def _consistent(self) -> ActuatorsConfig:
        for role in ("base", "head"):
            name = getattr(self, role)
            if name is not None and name not in self.devices:
                raise ValueError(f"{role}: no actuator named {name!r} in devices")
        missing = [s for s in REQUIRED_SOURCES if s not in self.sources]
        if missing:
            raise ValueError(f"sources: {', '.join(missing)} must be given a priority")
        for name, device in self.devices.items():
            for axis, limits in device.limits.items():
                if any(v is not None and not math.isfinite(v) for v in (limits.min, limits.max)):
                    raise ValueError(f"devices.{name}.limits.{axis}: limits must be finite")
        return self


Role = Literal["all", "perception", "policy", "actuators"]


class MqttTlsConfig(Section):
    ca_file: str | None = None
    """The CA that signed the broker's certificate (null: the system's)."""
    cert_file: str | None = None
    key_file: str | None = None
    """A client certificate and its key, when the broker asks for one."""
    insecure: bool = False
    """Do not check the broker's host name against its certificate."""


class MqttConfig(Section):
    """The robot bus (an MQTT broker): events out, commands in, and the parts of a split agent."""

    url: str | None = None
    """``mqtt://HOST:PORT`` (``mqtts://`` for TLS); null: no robot bus."""
    agent_id: str | None = None
    """This agent's name in the topic tree (null: the host name)."""
    prefix: str = "avagent"
    role: Role = "all"
    """Which part of the agent this process runs; the others run elsewhere, over the broker."""
    username: str | None = None
    password_env: str | None = None
    """The environment variable that holds the password (never the password itself)."""
    tls: MqttTlsConfig | None = None
    keepalive_s: int = Field(default=5, ge=1, le=600)
    """The broker declares this node gone (its Last Will) after 1.5 times this without a sign."""
    heartbeat_s: float = Field(default=1.0, gt=0.0, le=60.0)
    heartbeat_timeout_s: float = Field(default=3.0, gt=0.0, le=600.0)
    """A watched node silent this long is lost."""
    watch: list[str] = Field(default_factory=list)
    """Other nodes whose loss engages this agent's e-stop (a split agent's parts watch each other)."""
    max_payload_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)
    max_commands_per_s: float = Field(default=50.0, gt=0.0, le=100_000.0)
    """Commands beyond this rate (a burst of twice it is let through) are refused with an ack."""
    max_queued_commands: int = Field(default=64, ge=1, le=100_000)
    """Commands waiting to run; more are refused as busy (an e-stop never waits)."""
    command_workers: int = Field(default=4, ge=1, le=64)
    max_outbox: int = Field(default=1000, ge=10, le=1_000_000)
    """Messages waiting to be sent; while the link is down events are dropped and counted."""

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.heartbeat_timeout_s <= self.heartbeat_s:
            raise ValueError("heartbeat_timeout_s must be longer than heartbeat_s")
        if self.role != "all" and not self.url:
            raise ValueError(f"role {self.role}: the parts of an agent meet on the robot bus: give its url")
        return self
