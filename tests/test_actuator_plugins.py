"""Actuators by name from the YAML: the built-in types, a plug-in installed (with pip, from a small
package written here) under the entry-point group ``avagent.actuators``, and clear errors."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from avagent.agent.agent import Agent
from avagent.agent.config import parse_config
from avagent.agent.resources import Resources
from avagent.agent.robot_config import AxisLimitConfig, MqttConfig, MqttTlsConfig, SourceConfig
from avagent.core.errors import ConfigError
from avagent.io.actuators import SimulatedBase
from avagent.io.actuators.base import ActuatorRefused
from avagent.io.actuators.body import GuardedHead
from avagent.io.actuators.envelope import AxisLimits, Envelope
from avagent.io.actuators.hub import RateLimit
from avagent.io.actuators.log import LogActuator
from avagent.io.actuators.registry import plugin_types
from avagent.io.actuators.sources import Source
from avagent.io.mqtt.bridge import BridgeSettings
from avagent.io.mqtt.settings import Tls
from tests.test_wiring import defaults

GRIPPER = '''
from avagent.io.actuators import Axis, Reading


class Gripper:
    """Opens and closes, in millimetres."""

    axes = {"width": Axis("mm")}

    def __init__(self, name, top_mm):
        self.name = name
        self.top_mm = top_mm
        self.width = 0.0
        self.stops = 0

    async def move(self, targets, speed):
        self.width = targets["width"]

    async def stop(self):
        self.stops += 1

    def reading(self):
        return Reading({"width": self.width}, False)


def make(name, options, context):
    return Gripper(name, float(options.get("top_mm", 80)))
'''


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A package declaring the entry point, installed with pip into a folder put on the path."""
    source = tmp_path_factory.mktemp("gripper-src")
    (source / "avagent_test_gripper").mkdir()
    (source / "avagent_test_gripper" / "__init__.py").write_text(GRIPPER)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "avagent-test-gripper"
            version = "0.1"

            [project.entry-points."avagent.actuators"]
            test_gripper = "avagent_test_gripper:make"
            broken_gripper = "avagent_test_gripper:missing"
            """
        )
    )
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("avagent_test_gripper", None)


async def test_a_plugin_actuator_is_named_and_configured_in_the_yaml_and_kept_in_the_envelope(
    installed_plugin: Path, resources: Resources
) -> None:
    assert "test_gripper" in plugin_types()
    config = parse_config(
        {
            "actuators": {
                "devices": {
                    "base": {"type": "simulated_base"},
                    "gripper": {
                        "type": "test_gripper",
                        "options": {"top_mm": 60},
                        "limits": {"width": {"min": 0, "max": 60}},
                    },
                    "journal": {"type": "log", "options": {"axes": ["heading"]}},
                },
                "head": None,
            }
        }
    )
    agent = Agent(config, resources=resources)
    robot = agent.parts.robot
    assert robot is not None
    assert robot.hub is not None
    gripper = robot.hub.get("gripper")
    assert type(gripper).__module__ == "avagent_test_gripper"
    assert getattr(gripper, "top_mm", None) == 60.0
    checked = await robot.hub.command("gripper", {"width": 75.0})
    assert gripper.reading().position == {"width": 60.0}
    assert "outside [0, 60] mm" in checked.notes[0]
    assert isinstance(robot.hub.get("journal"), LogActuator)
    await robot.hub.estop("key")
    assert getattr(gripper, "stops", 0) == 1
    with pytest.raises(ActuatorRefused, match="no head"):
        await robot.body.look_at(10.0)


def test_unknown_and_broken_actuator_types_are_one_line_config_errors(
    installed_plugin: Path, resources: Resources
) -> None:
    def build(device: dict[str, object]) -> None:
        Agent(
            parse_config({"actuators": {"devices": {"arm": device}, "base": None, "head": None}}),
            resources=resources,
        )

    with pytest.raises(
        ConfigError, match=r"no actuator type 'laser' \(known: .*simulated_base.*test_gripper"
    ):
        build({"type": "laser"})
    with pytest.raises(ConfigError, match=r"'broken_gripper' .* cannot be loaded"):
        build({"type": "broken_gripper"})
    with pytest.raises(ConfigError, match="needs the robot bus"):
        build({"type": "mqtt", "options": {"topic": "robot/arm"}})
    with pytest.raises(ConfigError, match=r"actuators: .*base: no actuator named 'wheels'"):
        parse_config({"actuators": {"base": "wheels"}})


@pytest.mark.parametrize(
    ("section", "settings", "only_in_config"),
    [
        (AxisLimitConfig, AxisLimits, set()),
        (SourceConfig, Source, set()),
        (MqttTlsConfig, Tls, set()),
        (MqttConfig, BridgeSettings, set(MqttConfig.model_fields) - set(defaults(BridgeSettings))),
    ],
)
def test_robot_settings_keep_the_names_and_defaults_of_their_config_section(
    section: type[BaseModel], settings: type, only_in_config: set[str]
) -> None:
    config_fields, settings_fields = defaults(section), defaults(settings)
    assert set(section.model_fields) - only_in_config == {f.name for f in dataclasses.fields(settings)}
    for name in settings_fields:
        assert config_fields[name] == settings_fields[name], f"{settings.__name__}.{name}"


def test_the_builder_passes_the_actuator_settings_on(resources: Resources) -> None:
    config = parse_config(
        {
            "actuators": {
                "on_limit": "refuse",
                "rate_limit": {"calls": 3, "per_s": 2.0},
                "devices": {
                    "base": {
                        "type": "simulated_base",
                        "options": {"turn_speed_dps": 30},
                        "limits": {"heading": {"max_step": 45}},
                    },
                    "head": {"type": "simulated_head", "limits": {"pan": {"min": -60, "max": 60}}},
                },
                "sources": {
                    "follow": {"priority": 0},
                    "voice": {"priority": 50},
                    "bus": {"priority": 40, "lease_s": 1.5},
                },
            },
            "head": {"enabled": True},
        }
    )
    robot = Agent(config, resources=resources).parts.robot
    assert robot is not None
    assert robot.hub is not None
    hub = robot.hub
    assert hub.envelopes["base"] == Envelope({"heading": AxisLimits(max_step=45.0)}, on_limit="refuse")
    assert hub.envelopes["head"].axes["pan"] == AxisLimits(min=-60.0, max=60.0)
    assert hub.rate_limit == RateLimit(3, 2.0)
    assert hub.arbiter.sources["bus"] == Source(priority=40, lease_s=1.5)
    base = hub.get("base")
    assert isinstance(base, SimulatedBase)
    assert base.turn_speed_dps == 30.0
    assert robot.stage is not None
    assert robot.stage.ticks == "timer", "a live agent watches its actuators on a timer"
    assert isinstance(robot.follow_head, GuardedHead), "following the speaker goes through the actuator layer"
