"""The demo's first act: the whole offline path on spoken commands, checked against the truth.

It speaks several commands (and one the agent cannot do) with pauses, in background noise, runs
the agent on that recording, prints a readable timeline, and writes the agent's voice, the
conversation, the events and a timeline picture. The scene is synthesised, so the expected tool
call for every phrase is known and the demo reports whether each came out right.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from avagent.agent.files import FileRun
from avagent.cli.timeline import TimelinePrinter, render_timeline
from avagent.io.sinks import WavSink
from avagent.sim.scene import Scene, synthesize_scene


@dataclass(frozen=True)
class DemoCommand:
    text: str
    tool: str | None
    """The tool the phrase should call; None where the agent should say it did not understand."""


DEMO_COMMANDS = [
    DemoCommand("turn left", "turn"),
    DemoCommand("what time is it", "what_time"),
    DemoCommand("turn right forty five degrees", "turn"),
    DemoCommand("say good morning", "say"),
    DemoCommand("open the window please", None),
    DemoCommand("look at ninety degrees", "look_at"),
    DemoCommand("stop", "stop"),
]


class _Progress:
    def __init__(self, duration: float) -> None:
        self._duration = duration
        self._shown = -1
        self._tty = sys.stderr.isatty()

    def __call__(self, _t_from: float, t_to: float) -> None:
        share = min(1.0, t_to / self._duration)
        step = int(share * (50 if self._tty else 4))
        if step == self._shown:
            return
        self._shown = step
        if self._tty:
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r  [{bar:<30}] {share * 100:3.0f}%  {t_to:5.1f} / {self._duration:.1f} s")
            if share >= 1.0:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(f"  ... {share * 100:3.0f}% of the scene heard\n")
        sys.stderr.flush()


FILES = ("scene.wav", "replies.wav", "conversation.wav", "events.jsonl", "timeline.png")
"""What this act writes in the demo's folder."""


def run_commands(out: Path, *, snr_db: float = 15.0, seed: int = 7) -> bool:
    """Run the act; True when every command was handled as expected."""
    print(
        f"avagent demo: synthesising {len(DEMO_COMMANDS)} spoken commands in pink noise at {snr_db:g} dB SNR",
        file=sys.stderr,
    )
    scene = synthesize_scene([c.text for c in DEMO_COMMANDS], gap_s=3.5, snr_db=snr_db, seed=seed)
    scene_path = scene.write(out / "scene.wav")
    print(
        f"avagent demo: running the offline agent on {scene_path} ({scene.duration:.1f} s)\n", file=sys.stderr
    )
    events, probabilities = asyncio.run(_run_agent(scene_path, out / "replies.wav", scene.duration))

    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    voice, voice_rate = sf.read(str(out / "replies.wav"), dtype="float32")
    _write_conversation(out / "conversation.wav", scene, voice, voice_rate)
    render_timeline(
        out / "timeline.png",
        input_audio=scene.audio,
        input_rate=scene.sample_rate,
        output_audio=voice,
        output_rate=voice_rate,
        probabilities=probabilities,
        events=events,
        title=f"avagent demo: {len(DEMO_COMMANDS)} commands, pink noise at {snr_db:g} dB SNR",
    )
    ok = _report(scene, events)
    print("\navagent demo: results in " + str(out), file=sys.stderr)
    for name, what in [
        ("scene.wav", "what the agent heard"),
        ("replies.wav", "what the agent said, aligned with the scene"),
        ("conversation.wav", "both together"),
        ("events.jsonl", "every event, one JSON object per line"),
        ("timeline.png", "waveform, speech, turns, transcripts, tool calls and voice on one time axis"),
    ]:
        print(f"  {out / name}  ({what})", file=sys.stderr)
    return ok


async def _run_agent(
    scene_path: Path, replies_path: Path, duration: float
) -> tuple[list[dict[str, Any]], list[tuple[float, float]]]:
    probabilities: list[tuple[float, float]] = []
    run = FileRun(scene_path, keep=False)
    agent = run.agent
    agent.parts.listener.on_probability = lambda t, p: probabilities.append((t, p))
    printer = TimelinePrinter(agent.bus, sys.stdout)
    agent.add_stage(printer)
    wav = WavSink(replies_path, agent.playback.sample_rate)
    assert run.speaker is not None
    run.speaker.add_sink(wav.write)
    agent.clock.add_listener(_Progress(duration))
    try:
        await run.run()
    finally:
        wav.close()
    return printer.events, probabilities


def _write_conversation(path: Path, scene: Scene, voice: np.ndarray, voice_rate: int) -> None:
    voice16 = np.asarray(soxr.resample(voice, voice_rate, scene.sample_rate), dtype=np.float32)
    n = max(scene.audio.shape[0], voice16.shape[0])
    mix = np.zeros(n, dtype=np.float32)
    mix[: scene.audio.shape[0]] += scene.audio
    mix[: voice16.shape[0]] += voice16 * 0.8
    sf.write(str(path), np.clip(mix, -1.0, 1.0), scene.sample_rate, subtype="PCM_16")


def _report(scene: Scene, events: list[dict[str, Any]]) -> bool:
    """Compare what the agent did for each phrase with what it should have done."""
    turns = [e for e in events if e["type"] == "turn_ended"]
    by_turn: dict[int, dict[str, Any]] = {}
    for e in events:
        if e.get("turn") is not None and e["type"] in ("transcript", "tool_call"):
            by_turn.setdefault(e["turn"], {}).setdefault(e["type"], e)
    print("\navagent demo: what was said, and what the agent did", file=sys.stderr)
    good = 0
    for command, spoken in zip(DEMO_COMMANDS, scene.phrases, strict=True):
        turn = next((t for t in turns if t["start"] < spoken.end and t["end"] > spoken.start), None)
        got = by_turn.get(turn["turn"], {}) if turn else {}
        heard = got.get("transcript", {}).get("text", "")
        call = got.get("tool_call")
        right = (
            (call is None) if command.tool is None else (call is not None and call["name"] == command.tool)
        )
        good += right
        did = (
            f"{call['name']}({', '.join(f'{k}={v}' for k, v in call['args'].items())})"
            if call
            else "no tool: says sorry"
        )
        mark = "ok " if right else "BAD"
        print(f'  [{mark}] said "{command.text}" -> heard "{heard}" -> {did}', file=sys.stderr)
    latencies = [e["steps_ms"]["first_audio"] for e in events if e["type"] == "latency"]
    if latencies:
        print(
            f"  answers began {statistics.median(latencies):.0f} ms (median) after the end of speech the "
            "agent heard: it waits about 300 ms of silence to be sure the user has finished",
            file=sys.stderr,
        )
    print(f"  {good} of {len(DEMO_COMMANDS)} handled as expected", file=sys.stderr)
    return good == len(DEMO_COMMANDS)
