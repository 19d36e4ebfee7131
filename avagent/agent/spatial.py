"""Spatial hearing and sight, wired from the configuration: sound direction, camera, faces, the
active speaker and a head that turns toward who speaks. The Agent adds these stages when their
sections are configured; ``locate_speech`` runs just the hearing part on a file (``avagent doa``).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from avagent.agent.bus import Bus
from avagent.agent.clock import MediaClock
from avagent.agent.config import AgentConfig, ArrayConfig, CameraConfig, DoaConfig, HeadConfig, parse_config
from avagent.agent.errors import InputError
from avagent.agent.events import Event, SoundDirection
from avagent.agent.recorder import EventRecorder
from avagent.io.head import HeadLimits, PanTiltHead, SimulatedPanTiltHead
from avagent.io.wav import WavInfo, inspect_wav
from avagent.perception.arrays import MicArray, from_positions, load_geometry, preset
from avagent.perception.doa import DoaSettings, SoundDirectionStage
from avagent.perception.doa_tracker import TrackerSettings
from avagent.perception.srp import SrpSettings


def array_from_config(config: ArrayConfig) -> MicArray | None:
    """The configured microphone array, or None when there is none."""
    if config.preset is not None:
        return preset(config.preset)
    if config.geometry is not None:
        return load_geometry(config.geometry)
    if config.mics is not None:
        return from_positions("array.mics", config.mics)
    return None


def doa_settings(config: DoaConfig) -> DoaSettings:
    return DoaSettings(
        srp=SrpSettings(low_hz=config.low_hz, high_hz=config.high_hz),
        tracker=TrackerSettings(gate_deg=config.gate_deg),
        min_confidence=config.min_confidence,
        interim_s=config.interim_ms / 1000.0,
    )


def check_channels(info: WavInfo, array: MicArray) -> None:
    """A clear error when a recording has fewer channels than the array has microphones."""
    if info.channels < array.mics:
        raise InputError(
            f"{info.path}: has {info.channels} channel(s) but the array {array.name!r} has "
            f"{array.mics} microphones (channel i is microphone i)"
        )


@dataclass
class Spatial:
    """The spatial stages of one agent (each None when not configured)."""

    array: MicArray | None = None
    doa: SoundDirectionStage | None = None
    video: Any = None
    """The camera or video-file source."""
    faces: Any = None
    speaker: Any = None
    head: PanTiltHead | None = None
    follow: Any = None
    stages: list[Any] = field(default_factory=list)


def head_limits(config: HeadConfig) -> HeadLimits:
    return HeadLimits(
        pan_min_deg=config.pan_min_deg,
        pan_max_deg=config.pan_max_deg,
        tilt_min_deg=config.tilt_min_deg,
        tilt_max_deg=config.tilt_max_deg,
        max_speed_dps=config.max_speed_dps,
    )


def video_source(config: CameraConfig, bus: Bus, clock: MediaClock) -> Any:
    """A video file (played in step with the audio) or a live camera / stream URL."""
    from avagent.io.camera import CameraSource, VideoFileSource

    source = config.source
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source)
    if isinstance(source, str) and "://" not in source:
        return VideoFileSource(source, bus, clock, fps=config.fps)
    assert source is not None
    return CameraSource(source, bus, clock, fps=config.fps, width=config.width, height=config.height)


def build_spatial(
    config: AgentConfig,
    bus: Bus,
    clock: MediaClock,
    *,
    head: PanTiltHead | None = None,
    video_from_source: bool = False,
) -> Spatial:
    """The spatial stages that ``config`` asks for, subscribed to ``bus``. ``head`` replaces the
    simulated head (a real one behind the same interface). With ``video_from_source`` frames come
    from the agent's source (a call) instead of the configured camera."""
    spatial = Spatial()
    array = array_from_config(config.array)
    if array is not None:
        spatial.array = array
        spatial.doa = SoundDirectionStage(bus, array, doa_settings(config.array.doa))
        spatial.stages.append(spatial.doa)
    sees = config.faces.on_calls if video_from_source else config.camera.source is not None
    if sees:
        from avagent.perception.face_worker import FaceProcess, FaceSettings
        from avagent.perception.faces import CameraGeometry, FaceStage, build_detector
        from avagent.perception.speaker import ActiveSpeakerStage, SpeakerSettings

        f = config.faces
        if not video_from_source:
            spatial.video = video_source(config.camera, bus, clock)
        detector = build_detector(
            f.model, min_face_px=f.min_face_px, detect_width=f.detect_width, score_threshold=f.score_threshold
        )
        geometry = CameraGeometry(hfov_deg=config.camera.hfov_deg, yaw_deg=config.camera.yaw_deg)
        worker = FaceProcess(
            FaceSettings(
                model=f.model,
                min_face_px=f.min_face_px,
                detect_width=f.detect_width,
                score_threshold=f.score_threshold,
                max_missed=f.max_missed,
                hfov_deg=geometry.hfov_deg,
                yaw_deg=geometry.yaw_deg,
                threads=f.threads,
            )
        )
        spatial.faces = FaceStage(
            bus, detector, geometry, max_missed=f.max_missed, threads=f.threads, worker=worker
        )
        spatial.speaker = ActiveSpeakerStage(
            bus, SpeakerSettings(tolerance_deg=f.speaker_tolerance_deg), has_array=array is not None
        )
        spatial.stages += [s for s in (spatial.video, spatial.faces, spatial.speaker) if s is not None]
    if config.head.enabled:
        from avagent.policy.follow import FollowSettings, FollowSpeaker

        spatial.head = head if head is not None else SimulatedPanTiltHead(head_limits(config.head), clock.now)
        follow: Literal["active_speaker", "sound"] = "active_speaker" if spatial.speaker else "sound"
        spatial.follow = FollowSpeaker(
            bus,
            spatial.head,
            FollowSettings(
                follow=follow,
                hysteresis_deg=config.head.hysteresis_deg,
                min_confidence=config.head.min_confidence,
            ),
        )
        spatial.stages.append(spatial.follow)
    return spatial


async def locate_speech(
    path: str | Path, array: MicArray, config: AgentConfig | None = None
) -> list[SoundDirection]:
    """The sound directions of the speech in a multichannel WAV file (VAD on channel 0), fed as
    fast as the stages settle: the same answers as live, on any machine."""
    from avagent.agent.agent import listener_settings
    from avagent.io.file_source import FileAudioSource
    from avagent.perception.listening import Listener
    from avagent.perception.vad import SileroVad

    config = config or AgentConfig()
    info = inspect_wav(path)
    check_channels(info, array)
    bus = Bus()
    clock = MediaClock(extrapolate=False)
    bus.media_time = clock.now
    listener = Listener(bus, listener_settings(config), vad=SileroVad())
    doa = SoundDirectionStage(bus, array, doa_settings(config.array.doa))
    collector = EventRecorder(bus, SoundDirection)
    source = FileAudioSource(info.path, bus, clock, info=info, idle=lambda: not listener.busy, max_tail_s=5.0)
    async with asyncio.TaskGroup() as group:
        stages = [group.create_task(s.run(), name=s.name) for s in (listener, doa, collector)]
        await source.run()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await bus.activity.settled()
        bus.close()
        await asyncio.gather(*stages)
    return collector.events


def direction_line(event: Event) -> dict[str, Any]:
    """One ``avagent doa`` line: start, end, azimuth_deg, confidence (and what else is known)."""
    assert isinstance(event, SoundDirection)
    line: dict[str, Any] = {
        "start": round(event.start or 0.0, 3),
        "end": round(event.end or 0.0, 3),
        "azimuth_deg": round(event.azimuth_deg, 1),
        "confidence": round(event.confidence, 3),
        "source_id": event.source_id,
        "measured_deg": event.measured_deg,
    }
    if event.mirror_deg is not None:
        line["mirror_deg"] = round(event.mirror_deg, 1)
    return line


def apply_spatial_args(
    config: AgentConfig,
    *,
    array: str | None = None,
    geometry: Path | str | None = None,
    video: str | None = None,
    info: WavInfo | None = None,
) -> AgentConfig:
    """``config`` with the command line's ``--array`` / ``--geometry`` / ``--video`` applied, checked
    against the input file (enough channels for the array's microphones)."""
    data = config.model_dump()
    if array is not None or geometry is not None:
        data["array"].update(
            preset=array, geometry=str(geometry) if geometry is not None else None, mics=None
        )
    if video is not None:
        data["camera"]["source"] = video
    updated = parse_config(data, source="command line")
    chosen = array_from_config(updated.array)
    if chosen is not None and info is not None:
        check_channels(info, chosen)
    source = updated.camera.source
    is_file = isinstance(source, str) and "://" not in source and not source.strip().isdigit()
    if is_file and not Path(str(source)).is_file():
        raise InputError(f"{source}: no such video file")
    return updated
