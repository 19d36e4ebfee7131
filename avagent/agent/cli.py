"""The ``avagent`` command line: run, vad, devices, demo.

Bad input of any kind ends with one line on stderr and exit status 2, never a traceback.
Machine-readable output (``--json``) goes to stdout; everything meant for people goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from avagent.agent.agent import Agent, AudioSource
from avagent.agent.config import AgentConfig, load_config, with_overrides
from avagent.agent.errors import InputError
from avagent.agent.spatial import apply_spatial_args
from avagent.io.sinks import JsonlSink, WavSink
from avagent.perception.arrays import PRESETS

log = logging.getLogger("avagent")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avagent", description="A real-time audio-visual agent: hears, decides, speaks and acts."
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the agent on the microphone and speaker, or on a WAV file")
    run.add_argument(
        "--config", type=Path, help="YAML config (default: the laptop settings of configs/laptop.yaml)"
    )
    run.add_argument("--input", type=Path, help="a WAV file to listen to instead of the microphone")
    run.add_argument("--output", type=Path, help="write everything the agent says to this WAV file")
    run.add_argument("--json", action="store_true", help="print one JSON object per event on stdout")
    run.add_argument(
        "--realtime", action="store_true", help="pace a file in real time (default: as fast as possible)"
    )
    run.add_argument("--asr", choices=["pocketsphinx", "whisper", "openai"], help="speech recogniser")
    run.add_argument("--tts", choices=["espeak", "piper", "openai"], help="speech synthesiser")
    run.add_argument("--base-url", help="an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    run.add_argument("--model", help="a chat model for the policy (e.g. openai:gpt-4o-mini)")
    run_where = run.add_mutually_exclusive_group()
    run_where.add_argument("--array", choices=sorted(PRESETS), help="microphone array preset")
    run_where.add_argument("--geometry", type=Path, help="microphone array file (mics: [[x, y, z], ...])")
    run.add_argument("--video", help="a video file (or camera index / stream URL) for faces and the speaker")
    run.set_defaults(func=cmd_run)

    doa = commands.add_parser("doa", help="print the direction of each speech segment of a multichannel WAV")
    doa.add_argument("file", type=Path)
    doa_where = doa.add_mutually_exclusive_group(required=True)
    doa_where.add_argument("--array", choices=sorted(PRESETS), help="microphone array preset")
    doa_where.add_argument("--geometry", type=Path, help="microphone array file (mics: [[x, y, z], ...])")
    doa.add_argument("--config", type=Path, help="YAML config (its vad: and array.doa: settings apply)")
    doa.add_argument("--json", action="store_true", help="one JSON object per segment")
    doa.set_defaults(func=cmd_doa)

    vad = commands.add_parser("vad", help="print the speech segments of a WAV file")
    vad.add_argument("file", type=Path)
    vad.add_argument("--json", action="store_true", help="one JSON object per segment")
    vad.set_defaults(func=cmd_vad)

    devices = commands.add_parser("devices", help="list audio devices")
    devices.set_defaults(func=cmd_devices)

    demo = commands.add_parser(
        "demo", help="synthesise a scene offline, run the agent on it, show what happened"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="folder for the results")
    demo.add_argument("--snr", type=float, default=15.0, help="signal-to-noise ratio of the scene, in dB")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)

    serve = commands.add_parser("serve", help="answer browser video calls (WebRTC), one agent per call")
    serve.add_argument("--config", type=Path, help="YAML config; its serve: section sets up the server")
    serve.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: serve.port, 8080; 0: any free)")
    serve.add_argument("--asr", choices=["pocketsphinx", "whisper", "openai"], help="speech recogniser")
    serve.add_argument("--tts", choices=["espeak", "piper", "openai"], help="speech synthesiser")
    serve.add_argument("--base-url", help="an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    serve.add_argument("--model", help="a chat model for the policy (e.g. openai:gpt-4o-mini)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"avagent: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def load_run_config(args: argparse.Namespace) -> AgentConfig:
    config = load_config(args.config)
    return with_overrides(
        config,
        **{
            "asr.backend": args.asr,
            "tts.backend": args.tts,
            "base_url": args.base_url,
            "policy.model": args.model,
        },
    )


async def run_agent(agent: Agent, source: AudioSource) -> None:
    """Run ``agent`` on ``source``; SIGINT and SIGTERM stop it cleanly."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, agent.request_stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await agent.run(source)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def cmd_run(args: argparse.Namespace) -> int:
    from avagent.io.wav import inspect_wav

    config = load_run_config(args)
    info = inspect_wav(args.input) if args.input is not None else None
    config = apply_spatial_args(config, array=args.array, geometry=args.geometry, video=args.video, info=info)
    return asyncio.run(_run(args, config, info))


async def _run(args: argparse.Namespace, config: AgentConfig, info: object) -> int:
    from avagent.agent.timeline import TimelinePrinter
    from avagent.io.file_source import FileAudioSource
    from avagent.io.virtual_speaker import VirtualSpeaker
    from avagent.io.wav import WavInfo

    wav: WavSink | None = None
    speaker = None
    realtime = args.realtime or info is None
    try:
        if isinstance(info, WavInfo):
            agent = Agent(config, realtime=realtime)
            source: AudioSource = FileAudioSource(
                info.path,
                agent.bus,
                agent.clock,
                realtime=realtime,
                idle=agent.idle,
                block_ms=config.audio.input.block_ms,
                info=info,
            )
            wav = WavSink(args.output, agent.playback.sample_rate) if args.output else None
            VirtualSpeaker(agent.playback, agent.clock, [wav.write] if wav else [])
            where = f"{info.path} ({info.duration:.1f} s, {info.sample_rate} Hz, {info.channels} ch)"
        else:
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
                sinks=[
                    s for s in (wav.write if wav else None, echo.played if echo else None) if s is not None
                ],
            )
            speaker.start()
            where = f"microphone {source.device.name!r}, speaker {speaker.device.name!r} (Ctrl-C stops)"
        if args.json:
            agent.add_stage(JsonlSink(agent.bus, sys.stdout))
        else:
            agent.add_stage(TimelinePrinter(agent.bus, sys.stdout))
        from avagent.policy.select import describe_policy

        # After the sinks are in place: what prepare() reports (a fallback) is an event too.
        await agent.prepare()
        if agent.policy_notice is not None:
            print(f"avagent: {agent.policy_notice}; using the offline command policy", file=sys.stderr)
        active = describe_policy(agent.policy)
        print(
            f"avagent: policy {active} with {len(agent.tools)} tools; listening to {where}",
            file=sys.stderr,
        )
        await run_agent(agent, source)
    finally:
        if speaker is not None:
            speaker.close()
        if wav is not None:
            wav.close()
            print(f"avagent: the agent's voice is in {wav.path}", file=sys.stderr)
    return 0


def cmd_vad(args: argparse.Namespace) -> int:
    from avagent.io.wav import read_wav
    from avagent.perception.vad import detect_speech

    samples, rate = read_wav(args.file)
    for start, end in detect_speech(samples, rate):
        if args.json:
            print(json.dumps({"start": round(start, 3), "end": round(end, 3)}))
        else:
            print(f"{start:8.3f} {end:8.3f}")
    return 0


def cmd_doa(args: argparse.Namespace) -> int:
    from avagent.agent.spatial import direction_line, locate_speech
    from avagent.perception.arrays import resolve_array

    array = resolve_array(args.array, args.geometry)
    config = load_config(args.config)
    for event in asyncio.run(locate_speech(args.file, array, config)):
        if not event.final:
            continue
        line = direction_line(event)
        if args.json:
            print(json.dumps(line))
        else:
            mirror = f"  (or {line['mirror_deg']:.1f}: front/back ambiguous)" if "mirror_deg" in line else ""
            when = f"{line['start']:8.3f} {line['end']:8.3f}"
            print(f"{when} {line['azimuth_deg']:6.1f} {line['confidence']:6.3f}{mirror}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from avagent.io.audio_devices import list_devices

    devices = list_devices()
    if not devices:
        print("no audio devices found (no sound card, or PortAudio sees none)")
        return 0
    for d in devices:
        print(f"{d.index:3d}  {d.name}  (in {d.inputs}, out {d.outputs}, {d.default_sample_rate:.0f} Hz)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from avagent.agent.demo import run_demo

    return run_demo(args.out, snr_db=args.snr, seed=args.seed)


def cmd_serve(args: argparse.Namespace) -> int:
    from avagent.io.webrtc.server import serve_until_stopped

    config = with_overrides(load_run_config(args), **{"serve.host": args.host, "serve.port": args.port})
    asyncio.run(serve_until_stopped(config, lambda line: print(f"avagent: {line}", file=sys.stderr)))
    return 0
