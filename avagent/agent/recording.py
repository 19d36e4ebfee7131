"""Wiring a recording into an agent (the ``record:`` section; ``avagent run --record FILE``).

The builder calls ``wire_recording`` once the parts are made: when the config asks for a
recording, a ``RecordingStage`` joins the agent, the playback hands it the voice as the speaker
pulls it, and the policy's chat model is wrapped so that each request and answer is kept. The
file is named now (``record.file``, or a new name in ``record.folder``: one per session, so one
per call of ``avagent serve``) and made when the agent runs.

The configuration is written into the recording as the agent used it, with secrets left out: a
setting whose name says it holds one (a token, a key, a password, headers, an environment) is
not written unless it is a number, and every string is redacted.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import secrets
from pathlib import Path
from typing import Any, Protocol

from avagent.agent.config import AgentConfig
from avagent.agent.config_errors import is_secret_field
from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.errors import ConfigError, InputError
from avagent.core.stage import Stage
from avagent.core.text import redact
from avagent.io.playback import Playback
from avagent.io.recording.format import FORMAT_VERSION
from avagent.io.recording.stage import RecordingStage
from avagent.io.recording.writer import RecordingWriter, RecordSettings
from avagent.perception.arrays import load_geometry
from avagent.policy.runner import PolicyRunner

_VERSIONED = ("avagent", "numpy", "onnxruntime", "silero-vad", "pocketsphinx", "langchain-core", "mcap")


class Recordable(Protocol):
    """What ``wire_recording`` needs of an agent's parts (``AgentParts``)."""

    config: AgentConfig
    bus: Bus
    clock: MediaClock
    playback: Playback
    policy_runner: PolicyRunner
    extra: list[Stage]


def record_settings(config: AgentConfig) -> RecordSettings:
    r = config.record
    return RecordSettings(
        video=r.video,
        voice=r.voice,
        jpeg_quality=r.jpeg_quality,
        flush_s=r.flush_s,
        max_file_mb=r.max_file_mb,
        max_backlog_mb=r.max_backlog_mb,
    )


def recording_path(config: AgentConfig) -> Path | None:
    """The file this session is recorded into (None: it is not recorded)."""
    r = config.record
    if r.file is not None:
        return Path(r.file)
    if r.folder is None:
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(r.folder) / f"session-{stamp}-{secrets.token_hex(3)}.mcap"


def public_config(config: AgentConfig) -> dict[str, Any]:
    """``config`` as it can be written where others read it: secrets out, strings redacted, and
    a microphone array's geometry file replaced by its positions (so a replay needs no file)."""
    data = config.model_dump(mode="json", exclude={"record"})
    if config.array.geometry is not None:
        try:
            positions = load_geometry(config.array.geometry).positions.tolist()
        except InputError:
            positions = None  # kept as the file's name: a replay with --config can name it again
        if positions is not None:
            data["array"].update(geometry=None, mics=positions)
    cleaned: dict[str, Any] = _without_secrets(data)
    return cleaned


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_secrets(v)
            for k, v in value.items()
            if not (is_secret_field((str(k),)) and not isinstance(v, int | float | bool | None))
        }
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def versions() -> dict[str, str]:
    """The versions a recording was made with: Python, the platform, the packages that decide
    what the agent hears and says."""
    found = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in _VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def recording_metadata(config: AgentConfig, *, lockstep: bool, voice_rate: int) -> dict[str, str]:
    return {
        "format": FORMAT_VERSION,
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "lockstep": "true" if lockstep else "false",
        "voice_rate": str(voice_rate),
        "versions": json.dumps(versions()),
        "config": json.dumps(public_config(config)),
    }


def wire_recording(parts: Recordable) -> RecordingStage | None:
    """Record the session of the agent made of ``parts`` when its config asks for it."""
    config = parts.config
    path = recording_path(config)
    if path is None:
        return None
    settings = record_settings(config)
    rate = parts.playback.sample_rate
    writer = RecordingWriter(
        path,
        recording_metadata(config, lockstep=not parts.clock.extrapolate, voice_rate=rate),
        flush_s=settings.flush_s,
        max_file_bytes=round(settings.max_file_mb * (1 << 20)),
        max_backlog_bytes=round(settings.max_backlog_mb * (1 << 20)),
    )
    stage = RecordingStage(parts.bus, writer, settings, voice_rate=rate)
    parts.extra.append(stage)
    parts.playback.add_tap(stage.voice)
    if config.record.model and config.policy.model:
        tap_model(parts, stage)
    return stage


def tap_model(parts: Recordable, stage: RecordingStage) -> None:
    """Keep every request to the policy's chat model, and its answer, in the recording."""
    from avagent.policy.llm import LLMPolicy  # LangChain loads only when a model is configured
    from avagent.policy.model_tap import RecordingChatModel

    policy = parts.policy_runner.policy
    if isinstance(policy, LLMPolicy) and not isinstance(policy.model, RecordingChatModel):
        policy.model = RecordingChatModel(inner=policy.model, on_exchange=stage.model, now=parts.clock.now)


def check_serve_recording(config: AgentConfig) -> None:
    """``avagent serve`` records each call into a file of its own: refuse one file for them all."""
    if config.record.file is not None:
        raise ConfigError(
            f"record.file: a server records each call into a new file; give record.folder instead "
            f"of record.file ({config.record.file})"
        )
