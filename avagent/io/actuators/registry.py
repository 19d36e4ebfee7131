"""Actuators by type name: the built-in ones, and plug-ins from the entry-point group
``avagent.actuators``.

A plug-in package declares, in its ``pyproject.toml``,

    [project.entry-points."avagent.actuators"]
    gripper = "my_robot.gripper:make_gripper"

where ``make_gripper(name, options, context)`` returns an ``Actuator``; ``options`` is the mapping
given in the YAML (``actuators.devices.<name>.options``), ``context`` what the agent offers
(``ActuatorContext``: its clock, its head, its MQTT link). A YAML entry with ``type: gripper`` then
makes one. A built-in type of the same name wins.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from avagent.core.errors import ConfigError
from avagent.core.text import describe_error
from avagent.io.actuators.base import Actuator
from avagent.io.actuators.log import LogActuator
from avagent.io.actuators.simulated import SimulatedBase, SimulatedHead
from avagent.io.head import PanTiltHead
from avagent.io.mqtt.link import MqttLink

ENTRY_POINT_GROUP = "avagent.actuators"


@dataclass(frozen=True, slots=True)
class ActuatorContext:
    """What an actuator factory may use: the agent's media clock, its pan-tilt head (the
    simulated one unless a driver was given), and its MQTT link (None without ``mqtt.url``)."""

    now: Callable[[], float]
    head: PanTiltHead | None = None
    link: MqttLink | None = None


Factory = Callable[[str, Mapping[str, Any], ActuatorContext], Actuator]


def _simulated_base(name: str, options: Mapping[str, Any], context: ActuatorContext) -> Actuator:
    return SimulatedBase(name, turn_speed_dps=float(options.get("turn_speed_dps", 90.0)), now=context.now)


def _simulated_head(name: str, options: Mapping[str, Any], context: ActuatorContext) -> Actuator:
    if context.head is None:
        raise ConfigError(f"actuators.devices.{name}: there is no head to drive")
    return SimulatedHead(context.head, name)


def _log(name: str, options: Mapping[str, Any], context: ActuatorContext) -> Actuator:
    return LogActuator(name, tuple(options.get("axes", ("heading", "pan", "tilt"))))


def _mqtt(name: str, options: Mapping[str, Any], context: ActuatorContext) -> Actuator:
    from avagent.io.actuators.mqtt import MqttActuator

    if context.link is None:
        raise ConfigError(f"actuators.devices.{name}: an mqtt actuator needs the robot bus (mqtt.url)")
    if "topic" not in options:
        raise ConfigError(f"actuators.devices.{name}.options: an mqtt actuator needs a topic")
    return MqttActuator(
        name,
        context.link,
        str(options["topic"]),
        axes=tuple(options.get("axes", ("heading",))),
        circular=tuple(options.get("circular", ("heading",))),
        lease_ms=int(options.get("lease_ms", 2000)),
    )


BUILTIN: dict[str, Factory] = {
    "simulated_base": _simulated_base,
    "simulated_head": _simulated_head,
    "log": _log,
    "mqtt": _mqtt,
}


def plugin_types() -> dict[str, importlib.metadata.EntryPoint]:
    """The actuator types installed packages offer, by name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def factory_for(kind: str) -> Factory:
    """The factory of actuator type ``kind``; ``ConfigError`` when none is known or it cannot load."""
    if kind in BUILTIN:
        return BUILTIN[kind]
    plugins = plugin_types()
    entry = plugins.get(kind)
    if entry is None:
        known = ", ".join(sorted({*BUILTIN, *plugins}))
        raise ConfigError(f"no actuator type {kind!r} (known: {known})")
    try:
        loaded = entry.load()
    except Exception as exc:
        raise ConfigError(
            f"actuator type {kind!r} ({entry.value}) cannot be loaded: {describe_error(exc)}"
        ) from None
    if not callable(loaded):
        raise ConfigError(f"actuator type {kind!r} ({entry.value}) is not a factory")
    factory: Factory = loaded
    return factory


def make_actuator(name: str, kind: str, options: Mapping[str, Any], context: ActuatorContext) -> Actuator:
    """An actuator of type ``kind`` named ``name``, checked to be one."""
    try:
        actuator = factory_for(kind)(name, options, context)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"actuators.devices.{name}: {describe_error(exc)}") from None
    missing = [m for m in ("move", "stop", "reading", "axes", "name") if not hasattr(actuator, m)]
    if missing:
        raise ConfigError(
            f"actuators.devices.{name}: type {kind!r} made no actuator (no {', '.join(missing)})"
        )
    if actuator.name != name:
        raise ConfigError(f"actuators.devices.{name}: type {kind!r} named it {actuator.name!r}")
    return actuator
