"""The ``avagent`` command line: run, doa, vad, devices, demo, serve, replay, test.

Bad input of any kind ends with one line on stderr and exit status 2, never a traceback.
Machine-readable output (``--json``) goes to stdout; everything meant for people goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avagent.agent.config import load_config, with_overrides
from avagent.agent.recording import check_serve_recording
from avagent.cli.replay import add_parser as add_replay_parser
from avagent.cli.run import cmd_run, load_run_config
from avagent.cli.scenario_command import add_parser as add_test_parser
from avagent.core.errors import InputError
from avagent.core.events import SoundDirection
from avagent.core.text import one_line, redact
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
        "--record", type=Path, metavar="FILE.mcap", help="record the whole session (avagent replay)"
    )
    run.add_argument(
        "--realtime", action="store_true", help="pace a file in real time (default: as fast as possible)"
    )
    run.add_argument("--asr", choices=["pocketsphinx", "whisper", "openai"], help="speech recogniser")
    run.add_argument("--tts", choices=["espeak", "piper", "openai"], help="speech synthesiser")
    run.add_argument("--base-url", help="an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    run.add_argument("--model", help="a chat model for the policy (e.g. openai:gpt-4o-mini)")
    run.add_argument(
        "--model-input",
        metavar="KINDS",
        help="what the model takes: text, image, audio (e.g. text,image,audio)",
    )
    run.add_argument(
        "--model-output", metavar="KINDS", help="text, or text,audio: answers in the model's voice"
    )
    run_where = run.add_mutually_exclusive_group()
    run_where.add_argument("--array", choices=sorted(PRESETS), help="microphone array preset")
    run_where.add_argument("--geometry", type=Path, help="microphone array file (mics: [[x, y, z], ...])")
    run.add_argument("--video", help="a video file (or camera index / stream URL) for faces and the speaker")
    run.add_argument(
        "--describe", action="store_true", help="print how the agent's stages are wired, and run nothing"
    )
    run.add_argument(
        "--mqtt", metavar="URL", help="the robot bus: an MQTT broker, mqtt://HOST:PORT (docs/robot.md)"
    )
    run.add_argument("--agent-id", help="this agent's name on the robot bus (default: the host name)")
    run.add_argument(
        "--role",
        choices=["all", "perception", "policy", "actuators"],
        help="run one part of the agent; the others run elsewhere, joined by the robot bus (default: all)",
    )
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
    serve.add_argument(
        "--model-input",
        metavar="KINDS",
        help="what the model takes: text, image, audio (e.g. text,image,audio)",
    )
    serve.add_argument(
        "--model-output", metavar="KINDS", help="text, or text,audio: answers in the model's voice"
    )
    serve.set_defaults(func=cmd_serve)
    add_replay_parser(commands)
    add_test_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"avagent: error: {one_line(redact(str(exc)), limit=None)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class RedactingFormatter(logging.Formatter):
    """Log lines as usual, with anything that looks like a credential taken out (a library's
    message, an exception's text, a URL with a password in it)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def cmd_vad(args: argparse.Namespace) -> int:
    from avagent.io.wav import read_wav
    from avagent.perception.vad import detect_speech

    # The VAD listens to channel 0 only: only that channel is held in memory.
    samples, rate = read_wav(args.file, channel=0)
    for start, end in detect_speech(samples, rate):
        if args.json:
            print(json.dumps({"start": round(start, 3), "end": round(end, 3)}))
        else:
            print(f"{start:8.3f} {end:8.3f}")
    return 0


def direction_line(event: SoundDirection) -> dict[str, Any]:
    """One ``avagent doa`` line: start, end, azimuth_deg, confidence (and what else is known)."""
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


def cmd_doa(args: argparse.Namespace) -> int:
    from avagent.agent.files import locate_speech
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
    from avagent.cli.demo import run_demo

    return run_demo(args.out, snr_db=args.snr, seed=args.seed)


def cmd_serve(args: argparse.Namespace) -> int:
    from avagent.agent.serve.server import serve_until_stopped

    config = with_overrides(load_run_config(args), **{"serve.host": args.host, "serve.port": args.port})
    check_serve_recording(config)
    asyncio.run(serve_until_stopped(config, lambda line: print(f"avagent: {line}", file=sys.stderr)))
    return 0
