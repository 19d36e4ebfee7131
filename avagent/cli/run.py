"""``avagent run``: the agent on the microphone and speaker, or on a WAV file; ``--describe`` prints
how its stages are wired instead of running them."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from avagent.agent.agent import Agent
from avagent.agent.builder import array_from_config, describe_policy
from avagent.agent.config import AgentConfig, load_config, parse_config, with_overrides
from avagent.agent.files import FileRun
from avagent.cli.robot import add_estop_keys, remote_part
from avagent.cli.timeline import TimelinePrinter
from avagent.core.errors import ConfigError, InputError
from avagent.core.files import check_output, check_readable
from avagent.core.messages import AudioFrame
from avagent.core.stage import Stage, describe
from avagent.io.sinks import JsonlSink, WavSink
from avagent.io.wav import WavInfo, inspect_wav
from avagent.perception.arrays import check_channels

if TYPE_CHECKING:
    from avagent.io.audio_devices import DeviceSpeaker, MicrophoneSource


def load_run_config(args: argparse.Namespace) -> AgentConfig:
    """The config file with the command line's backend and model choices applied."""
    config = load_config(args.config)
    return with_overrides(
        config,
        **{
            "asr.backend": args.asr,
            "tts.backend": args.tts,
            "base_url": args.base_url,
            "policy.model": args.model,
            "policy.model_input": getattr(args, "model_input", None),
            "policy.model_output": getattr(args, "model_output", None),
            "mqtt.url": getattr(args, "mqtt", None),
            "mqtt.agent_id": getattr(args, "agent_id", None),
            "mqtt.role": getattr(args, "role", None),
            "record.file": str(args.record) if getattr(args, "record", None) is not None else None,
        },
    )


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
    video_file = _video_file(updated)
    if video_file is not None:
        check_readable(video_file, "video file")
    return updated


def _video_file(config: AgentConfig) -> str | None:
    """The camera's source when it is a file (not a device index or a stream URL)."""
    source = config.camera.source
    if isinstance(source, str) and "://" not in source and not source.strip().isdigit():
        return source
    return None


def check_run_output(args: argparse.Namespace, config: AgentConfig) -> None:
    """Refuse, before anything runs, an ``--output`` that cannot be written or that is one of the
    files the run reads (which writing would destroy)."""
    reads = [args.input, args.config, args.geometry, args.video, config.array.geometry, _video_file(config)]
    if args.output is not None:
        check_output(args.output, reads, "output WAV file")
    if getattr(args, "record", None) is not None:
        if args.output is not None and Path(args.record).absolute() == Path(args.output).absolute():
            raise InputError(f"{args.record}: is also the output WAV file; give the recording its own file")
        check_output(args.record, reads, "recording")


def describe_command(args: argparse.Namespace, config: AgentConfig, info: WavInfo | None) -> int:
    """Print the wiring of the agent ``avagent run`` would run (nothing is started)."""
    if info is not None:
        run = FileRun(info.path, config, info=info, keep=False)
        stages: list[Stage] = [run.source, *run.agent.stages]
    else:
        # The sound card is not opened to describe it.
        stages = [_Declared("microphone", (), (AudioFrame,)), *Agent(config).stages]
    for row in describe(stages):
        if args.json:
            print(json.dumps(dataclasses.asdict(row)))
            continue
        print(row.stage)
        print(f"  consumes: {', '.join(row.consumes) or '-'}")
        print(f"  produces: {', '.join(row.produces) or '-'}")
        if row.readers:
            print(f"  read by:  {', '.join(row.readers)}")
    return 0


async def run_command(args: argparse.Namespace, config: AgentConfig, info: WavInfo | None) -> int:
    """Run the agent until the file is answered or a signal stops it: 0 when it finished or was
    stopped by SIGTERM (a supervisor's clean stop), 130 when the user interrupted it (SIGINT)."""
    wav: WavSink | None = None
    speaker: DeviceSpeaker | None = None
    try:
        source: Stage
        if config.mqtt.role in ("policy", "actuators"):
            agent, source = remote_part(config)
            where = f"the robot bus, as the {config.mqtt.role} part (Ctrl-C stops)"
        elif info is not None:
            run = FileRun(info.path, config, realtime=bool(args.realtime), info=info, keep=False)
            agent = run.agent
            if args.output:
                wav = WavSink(args.output, agent.playback.sample_rate)
                assert run.speaker is not None
                run.speaker.add_sink(wav.write)
            source = run.source
            where = f"{info.path} ({info.duration:.1f} s, {info.sample_rate} Hz, {info.channels} ch)"
        else:
            agent, mic, speaker, wav = _live(args, config)
            source = mic
            speaker.start()
            where = f"microphone {mic.device.name!r}, speaker {speaker.device.name!r} (Ctrl-C stops)"
        agent.add_stage(
            JsonlSink(agent.bus, sys.stdout) if args.json else TimelinePrinter(agent.bus, sys.stdout)
        )
        if add_estop_keys(agent):
            print("avagent: space or e: emergency stop; c: clear it", file=sys.stderr)
        # After the sinks are in place: what prepare() reports (a fallback) is an event too.
        await agent.prepare()
        if agent.policy_notice is not None:
            print(f"avagent: {agent.policy_notice}; using the offline command policy", file=sys.stderr)
        policy = describe_policy(agent.policy)
        if config.mqtt.role == "actuators":
            print(f"avagent: actuators {', '.join(config.actuators.devices)}; on {where}", file=sys.stderr)
        else:
            tools = len(agent.tools)
            print(f"avagent: policy {policy} with {tools} tools; listening to {where}", file=sys.stderr)
        await agent.run(source, handle_signals=True)
    finally:
        if speaker is not None:
            speaker.stop()
        if wav is not None:
            wav.close()
            print(f"avagent: the agent's voice is in {wav.path}", file=sys.stderr)
        if getattr(args, "record", None) is not None:
            print(f"avagent: the session is recorded in {args.record} (avagent replay)", file=sys.stderr)
    return 130 if agent.stop_signal == signal.SIGINT else 0


def _live(
    args: argparse.Namespace, config: AgentConfig
) -> tuple[Agent, MicrophoneSource, DeviceSpeaker, WavSink | None]:
    """An agent on the sound card: the default (or configured) microphone and speaker, with the
    speaker's echo taken out of the microphone."""
    from avagent.io.audio_devices import DeviceSpeaker, MicrophoneSource, find_device
    from avagent.perception.echo import EchoCanceller

    out_dev = find_device(config.audio.output.device, output=True)
    rate = config.audio.output.sample_rate or int(out_dev.default_sample_rate)
    echo = EchoCanceller(rate) if config.audio.echo_cancellation else None
    agent = Agent(config, realtime=True, playback_rate=rate, echo=echo)
    mic = config.audio.input
    source = MicrophoneSource(
        agent.bus,
        agent.clock,
        device=mic.device,
        sample_rate=mic.sample_rate,
        channels=mic.channels,
        block_ms=mic.block_ms,
    )
    wav = WavSink(args.output, rate) if args.output else None
    speaker = DeviceSpeaker(
        agent.playback,
        agent.clock,
        device=out_dev.index,
        block_ms=config.audio.output.block_ms,
        sinks=[s for s in (wav.write if wav else None, echo.played if echo else None) if s is not None],
    )
    return agent, source, speaker, wav


@dataclasses.dataclass(frozen=True)
class _Declared:
    """A stage known by its declaration alone."""

    name: str
    consumes: tuple[type, ...]
    produces: tuple[type, ...]

    async def run(self) -> None:
        raise NotImplementedError(self.name)


def cmd_run(args: argparse.Namespace) -> int:
    config = load_run_config(args)
    if not args.describe:
        check_run_output(args, config)
    if args.input is not None and config.mqtt.role in ("policy", "actuators"):
        raise ConfigError(
            f"--input: the {config.mqtt.role} part hears nothing; the perception part takes the file"
        )
    info = inspect_wav(args.input) if args.input is not None else None
    config = apply_spatial_args(config, array=args.array, geometry=args.geometry, video=args.video, info=info)
    if args.describe:
        return describe_command(args, config, info)
    return asyncio.run(run_command(args, config, info))
