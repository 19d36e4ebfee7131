"""The demo's replay act: a short session recorded to an MCAP file, summarised (``avagent replay
--info``), then replayed through a fresh agent with the recorded tool results standing in, and
compared with the recording (``avagent replay --compare``): nothing differs."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from avagent.agent.compare import compare
from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.files import FileRun
from avagent.agent.replay import load_recording, prepare_replay
from avagent.agent.resources import Resources
from avagent.cli.demo.act import ActResult, heading
from avagent.cli.replay import info_lines, recording_info
from avagent.cli.timeline import TimelinePrinter
from avagent.io.sinks import WavSink
from avagent.sim.scene import synthesize_scene

SAID = ["turn left", "what time is it"]


async def run_replay(out: Path, *, seed: int = 7) -> bool:
    heading(
        "replay",
        "a session recorded to MCAP, then replayed through a fresh agent (recorded tool results stand "
        "in) and compared with the recording",
    )
    scene = synthesize_scene(SAID, snr_db=20.0, seed=seed)
    audio = scene.write(out / "scene.wav")
    resources = Resources(AgentConfig())
    await resources.start()
    try:
        with tempfile.TemporaryDirectory(prefix="avagent-demo-") as tmp:
            mcap = Path(tmp) / "session.mcap"
            recorded = await FileRun(
                audio, parse_config({"record": {"file": str(mcap)}}), resources=resources
            ).run()
            contents = load_recording(mcap)
            print(f"  recorded {mcap.name}, {mcap.stat().st_size / 1024:.0f} KiB:", file=sys.stderr)
            for line in info_lines(recording_info(contents))[2:]:
                print(f"    {line}", file=sys.stderr)
            replay = prepare_replay(contents, resources=resources, keep=False)
            agent = replay.run.agent
            printer = TimelinePrinter(agent.bus, sys.stdout)
            agent.add_stage(printer)
            wav = WavSink(out / "replies.wav", agent.playback.sample_rate)
            assert replay.run.speaker is not None
            replay.run.speaker.add_sink(wav.write)
            print("  the replay:", file=sys.stderr)
            sys.stderr.flush()
            try:
                await replay.run.run()
            finally:
                wav.close()
    finally:
        await resources.stop()
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for event in printer.events:
            f.write(json.dumps(event) + "\n")
    result = ActResult(printer.events, agent)
    first = recorded.dicts()
    calls = [(e["name"], e["args"]) for e in first if e["type"] == "tool_call"]
    result.check(
        f"the recording holds {contents.duration:.1f} s of input, {contents.voice_s:.1f} s of voice, "
        f"{len(contents.events)} events and {len(contents.tools)} tool results",
        contents.cut is None and len(contents.events) == len(first) and len(contents.tools) == len(calls),
    )
    again = [(e["name"], e["args"]) for e in result.of_type("tool_call")]
    result.check(f"the replay makes the same tool calls: {again}", again == calls and len(calls) == 2)
    said = [e["text"] for e in result.of_type("say")]
    result.check(f"and says the same: {said}", said == [e["text"] for e in first if e["type"] == "say"])
    outcomes = replay.outcomes
    result.check(
        "no tool ran again: the recorded results stood in (nothing moved)",
        outcomes is not None and not outcomes.missing and not result.of_type("actuator"),
    )
    differences = compare(contents.events, result.events)
    result.check(
        f"avagent replay --compare: {len(differences)} difference(s) from the recording",
        not differences,
    )
    return result.ok
