"""``avagent replay``: a recorded session through today's agent, and what changed.

avagent replay session.mcap [--json] [--output reply.wav] [--config FILE] [--live]
avagent replay session.mcap --compare [--tolerance-ms 250]      # exit 1 when something differs
avagent replay session.mcap --info [--json]                     # what the recording holds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from avagent.agent.compare import DEFAULT_TOLERANCE_MS, compare, summarise
from avagent.agent.config import load_config
from avagent.agent.replay import load_recording, prepare_replay
from avagent.cli.timeline import TimelinePrinter
from avagent.core.files import check_output
from avagent.io.recording.contents import RecordingContents
from avagent.io.sinks import JsonlSink, WavSink


def add_parser(commands: Any) -> None:
    """Register ``replay`` with the command line's subcommands."""
    replay = commands.add_parser(
        "replay", help="run today's agent on a recorded session (avagent run --record)"
    )
    replay.add_argument("file", type=Path, help="an MCAP recording")
    replay.add_argument(
        "--json", action="store_true", help="one JSON object per event (or difference, or the info)"
    )
    replay.add_argument(
        "--output", type=Path, help="write what the agent says in the replay to this WAV file"
    )
    replay.add_argument(
        "--config", type=Path, help="YAML config (default: the one the session was recorded with)"
    )
    replay.add_argument(
        "--live",
        action="store_true",
        help="ask the model and run the tools (default: their recorded answers)",
    )
    replay.add_argument(
        "--compare",
        action="store_true",
        help="list what differs from the recording; exit 1 when something does",
    )
    replay.add_argument(
        "--tolerance-ms",
        type=float,
        default=DEFAULT_TOLERANCE_MS,
        help=f"answer delays that differ by more are a difference (default {DEFAULT_TOLERANCE_MS:g})",
    )
    replay.add_argument("--info", action="store_true", help="summarise the recording and replay nothing")
    replay.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    contents = load_recording(args.file)
    if args.info:
        info = recording_info(contents)
        print(json.dumps(info) if args.json else "\n".join(info_lines(info)))
        return 0
    config = load_config(args.config) if args.config is not None else None
    if args.output is not None:
        check_output(args.output, [args.file, args.config], "output WAV file")
    return asyncio.run(_replay(args, contents, config))


async def _replay(args: argparse.Namespace, contents: RecordingContents, config: Any) -> int:
    replay = prepare_replay(contents, config, live=args.live, keep=args.compare)
    agent = replay.run.agent
    wav = WavSink(args.output, agent.playback.sample_rate) if args.output is not None else None
    if wav is not None and replay.run.speaker is not None:
        replay.run.speaker.add_sink(wav.write)
    if not args.compare:
        agent.add_stage(
            JsonlSink(agent.bus, sys.stdout) if args.json else TimelinePrinter(agent.bus, sys.stdout)
        )
    stand_ins = (
        "the model and the tools are live" if args.live else "recorded answers and tool results stand in"
    )
    _say(f"replaying {contents.path} ({contents.duration:.1f} s; {stand_ins})")
    if contents.cut is not None:
        _say(f"the recording was cut short ({contents.cut}): replaying the {contents.duration:.1f} s before")
    try:
        result = await replay.run.run(handle_signals=True)
    finally:
        if wav is not None:
            wav.close()
            _say(f"the agent's voice is in {wav.path}")
    if replay.model is not None and replay.model.unused:
        _say(f"{replay.model.unused} recorded model answer(s) were not asked for")
    if replay.outcomes is not None and replay.outcomes.missing:
        _say(f"not in the recording, so not run: {', '.join(replay.outcomes.missing[:5])}")
    if agent.stop_signal == signal.SIGINT:
        return 130
    if not args.compare:
        return 0
    differences = compare(
        contents.events, result.dicts(), tolerance_ms=args.tolerance_ms, complete=contents.cut is None
    )
    for difference in differences:
        print(json.dumps(difference.to_dict()) if args.json else difference.text)
    if differences:
        _say(f"{len(differences)} difference(s) from the recording")
        return 1
    _say("the replay matches the recording")
    return 0


def _say(line: str) -> None:
    print(f"avagent: {line}", file=sys.stderr)


def recording_info(contents: RecordingContents) -> dict[str, Any]:
    """What ``--info`` reports: duration, channels, streams, turns."""
    audio = contents.audio
    turn_times = {e.get("turn"): e.get("end") for e in contents.events if e.get("type") == "turn_ended"}
    turns = [
        {
            "turn": t.turn,
            "end": turn_times.get(t.turn),
            "heard": t.heard,
            "tool_calls": t.calls,
            "said": t.said,
        }
        for t in summarise(contents.events)
        if t.turn is not None
    ]
    config = contents.config or {}
    return {
        "path": str(contents.path),
        "complete": contents.cut is None,
        "cut": contents.cut,
        "duration_s": round(contents.duration, 3),
        "audio_in": None
        if audio is None
        else {
            "sample_rate": audio.sample_rate,
            "channels": audio.channels,
            "format": audio.dtype,
            "blocks": audio.blocks,
        },
        "video": {
            "frames": contents.video_frames,
            "size": contents.video_size,
            "span_s": contents.video_span,
        },
        "voice_s": round(contents.voice_s, 3),
        "channels": contents.messages,
        "events": len(contents.events),
        "tool_calls": len(contents.tools),
        "model_exchanges": len(contents.model),
        "skipped": contents.skipped,
        "recorded": contents.metadata.get("started"),
        "lockstep": contents.lockstep,
        "policy_model": (config.get("policy") or {}).get("model"),
        "versions": contents.versions,
        "turns": turns,
    }


def info_lines(info: dict[str, Any]) -> list[str]:
    """``recording_info`` for people."""
    state = "complete" if info["complete"] else f"cut short: {info['cut']}"
    audio = info["audio_in"]
    video = info["video"]
    how = "a file fed in lockstep" if info["lockstep"] else "live"
    versions = info["versions"]
    lines = [
        f"recording: {info['path']} ({state})",
        f"recorded:  {info['recorded'] or 'unknown'}, {how}; avagent {versions.get('avagent', '?')}, "
        f"python {versions.get('python', '?')}",
        f"duration:  {info['duration_s']:.2f} s of input audio"
        + (
            f", {audio['sample_rate']} Hz, {audio['channels']} channel(s), {audio['format']}" if audio else ""
        ),
        "video:     "
        + (f"{video['frames']} frames, {video['size'][0]}x{video['size'][1]}" if video["frames"] else "none"),
        f"voice:     {info['voice_s']:.1f} s of the agent's voice",
        f"events:    {info['events']}; tool calls: {info['tool_calls']}; "
        f"model exchanges: {info['model_exchanges']}"
        + (f" (model {info['policy_model']})" if info["policy_model"] else ""),
        "channels:  " + ", ".join(f"{topic} {count}" for topic, count in sorted(info["channels"].items())),
        f"turns:     {len(info['turns'])}",
    ]
    for turn in info["turns"]:
        end = f"{turn['end']:7.2f} s" if isinstance(turn["end"], int | float) else "        "
        calls = f" -> {', '.join(turn['tool_calls'])}" if turn["tool_calls"] else ""
        said = f"; said {' '.join(turn['said'])!r}" if turn["said"] else ""
        lines.append(f"  {turn['turn']:3d} {end}  heard {turn['heard']!r}{calls}{said}")
    if info["skipped"]:
        lines.append(f"damaged messages left out: {info['skipped']}")
    return lines
