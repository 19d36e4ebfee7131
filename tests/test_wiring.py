"""Every stage is held to what it declares it consumes and produces, and every part's settings keep
the names, units and defaults of the config section they come from."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable

import pytest
from pydantic import BaseModel

from avagent.agent.agent import Agent
from avagent.agent.config import (
    DoaConfig,
    FaceConfig,
    HeadConfig,
    McpServerConfig,
    TurnConfig,
    VadConfig,
    parse_config,
)
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.cli.timeline import TimelinePrinter
from avagent.core.events import Error, Event, Overflow, Say
from avagent.core.recorder import EventRecorder
from avagent.core.stage import Stage, describe
from avagent.io.head import HeadLimits
from avagent.io.sinks import JsonlSink
from avagent.io.webrtc.events_out import EventChannel
from avagent.perception.doa import DoaSettings
from avagent.perception.face_detection import FaceSettings
from avagent.perception.turns import TurnSettings
from avagent.perception.vad import VadSettings
from avagent.policy.follow import FollowSettings
from avagent.tools.mcp import McpServer
from tests.conftest import SceneFactory

AGENT_ITSELF = (Error, Say)
"""Published by the agent, not a stage: a crashed stage's error, and the notice that the model
cannot be reached."""


def everything_configured(resources: Resources) -> Agent:
    """An agent with every optional stage: a microphone array, sight on the call's video, a head."""
    config = parse_config(
        {
            "array": {"preset": "respeaker4"},
            "faces": {"on_calls": True},
            "head": {"enabled": True},
            "hearing": {"spot_urgent": True},
        }
    )
    agent = Agent(config, resources=resources, video_from_source=True)
    for sink in (
        EventRecorder(agent.bus),
        JsonlSink(agent.bus, io.StringIO()),
        TimelinePrinter(agent.bus, io.StringIO()),
        EventChannel(agent.bus),
    ):
        agent.add_stage(sink)
    return agent


def test_every_stage_subscribes_to_exactly_what_it_declares(resources: Resources) -> None:
    agent = everything_configured(resources)
    names = [stage.name for stage in agent.stages]
    assert {"doa", "faces", "active_speaker", "follow_speaker", "recorder"} <= set(names)
    assert len(names) == len(set(names)), "stage names are unique"
    subscribed: dict[str, set[type]] = {}
    for stream, types in agent.bus.subscriptions():
        owner = stream.split(".", 1)[0]
        assert owner in names, f"the stream {stream} belongs to no stage"
        subscribed.setdefault(owner, set()).update(types)
    for stage in agent.stages:
        assert subscribed.get(stage.name, set()) == set(stage.consumes), stage.name


def assert_published_as_declared(stages: Iterable[Stage], events: Iterable[Event]) -> None:
    """Every event published is one that some stage (or the agent itself) declares it produces."""
    declared = {kind for stage in stages for kind in stage.produces} | {Overflow, *AGENT_ITSELF}
    undeclared = {type(e).__name__ for e in events if not isinstance(e, tuple(declared))}
    assert not undeclared, f"published but declared by no stage: {undeclared}"


async def test_what_an_agent_publishes_is_declared(make_scene: SceneFactory, resources: Resources) -> None:
    _, path = make_scene(["turn left", "what time is it"], snr_db=20.0, seed=3)
    result = await run_on_file(path, resources=resources)
    kinds = {e.type for e in result.events}
    assert {"speech_started", "turn_ended", "transcript", "tool_call", "say", "speaking_started"} <= kinds
    assert_published_as_declared([result.source, *result.agent.stages], result.events)


def test_describe_follows_the_declarations(resources: Resources) -> None:
    rows = {row.stage: row for row in describe(everything_configured(resources).stages)}
    assert rows["listener"].produces[0] == "speech_started"
    assert "asr" in rows["listener"].readers
    assert "follow_speaker" in rows["active_speaker"].readers
    assert rows["asr"].sources == ("listener",)
    assert set(rows["recorder"].sources) >= {"listener", "asr", "policy", "speech_out", "doa"}


def defaults(kind: type) -> dict[str, object]:
    if issubclass(kind, BaseModel):
        return {name: f.get_default(call_default_factory=True) for name, f in kind.model_fields.items()}
    assert dataclasses.is_dataclass(kind)
    out: dict[str, object] = {}
    for f in dataclasses.fields(kind):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


@pytest.mark.parametrize(
    ("section", "settings", "only_in_config"),
    [
        (VadConfig, VadSettings, {"backend"}),
        (TurnConfig, TurnSettings, set()),
        (DoaConfig, DoaSettings, set()),
        (FaceConfig, FaceSettings, {"speaker_tolerance_deg", "on_calls"}),
        (HeadConfig, HeadLimits, {"enabled", "hysteresis_deg", "min_confidence"}),
        (
            HeadConfig,
            FollowSettings,
            {"enabled", "pan_min_deg", "pan_max_deg", "tilt_min_deg", "tilt_max_deg", "max_speed_dps"},
        ),
        (McpServerConfig, McpServer, set()),
    ],
)
def test_settings_keep_the_names_units_and_defaults_of_their_config_section(
    section: type[BaseModel], settings: type, only_in_config: set[str]
) -> None:
    config_fields, settings_fields = defaults(section), defaults(settings)
    assert set(config_fields) - only_in_config <= set(settings_fields), "a config field has no setting"
    for name in set(config_fields) & set(settings_fields):
        config_default, settings_default = config_fields[name], settings_fields[name]
        if isinstance(config_default, list | tuple):
            config_default, settings_default = list(config_default), list(settings_default)  # type: ignore[call-overload]
        assert config_default == settings_default, f"{settings.__name__}.{name}"


def test_the_builder_passes_every_setting_on(resources: Resources) -> None:
    config = parse_config(
        {
            "vad": {"threshold": 0.6, "min_speech_ms": 96.0},
            "turns": {"hangover_ms": 450.0},
            "array": {"preset": "pair", "doa": {"interim_ms": 250.0}},
            "head": {"enabled": True, "hysteresis_deg": 7.0, "pan_max_deg": 90.0},
        }
    )
    parts = Agent(config, resources=resources).parts
    assert parts.listener.segmenter.settings == VadSettings(threshold=0.6, min_speech_ms=96.0)
    assert parts.listener.turns.settings == TurnSettings(hangover_ms=450.0)
    assert parts.spatial.doa is not None
    assert parts.spatial.doa.settings == DoaSettings(interim_ms=250.0)
    assert parts.spatial.follow is not None
    assert parts.spatial.follow.settings.hysteresis_deg == 7.0
    assert parts.spatial.head is not None
    assert parts.spatial.head.limits.pan_max_deg == 90.0


def test_event_classes_are_named_after_their_json_types() -> None:
    def subclasses(kind: type[Event]) -> list[type[Event]]:
        return [s for c in kind.__subclasses__() for s in (c, *subclasses(c))]

    events = subclasses(Event)
    assert len(events) >= 20
    for kind in events:
        assert kind.__name__ == "".join(part.title() for part in kind.type.split("_")), kind.type
