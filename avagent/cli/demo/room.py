"""The demo's room act: two people talk in turn from two directions in a simulated reverberant room,
heard by a four-microphone array; the agent says where each voice came from and turns its head to
whoever speaks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from avagent.agent.agent import Agent
from avagent.agent.config import parse_config
from avagent.cli.demo.act import heading, run_act
from avagent.core.angles import wrap180
from avagent.perception.arrays import preset

TALKS = [("turn left", 30.0, "en-us"), ("what time is it", 330.0, "en"), ("look at me", 30.0, "en-us")]
"""What each talker says, from which azimuth (degrees counter-clockwise from the array's front),
in which voice."""


async def run_room(out: Path, *, seed: int = 7) -> bool | None:
    """Run the act; None when the room cannot be simulated here (no pyroomacoustics)."""
    if importlib.util.find_spec("pyroomacoustics") is None:
        why = "simulating a room needs pyroomacoustics: pip install 'avagent[sim]'"
        print(f"\navagent demo: room: skipped ({why})", file=sys.stderr)
        return None
    from avagent.sim.room import Utterance, simulate_room

    heading(
        "room",
        "two talkers at 30 and 330 degrees in a room with 0.3 s of reverberation, a ReSpeaker 4-mic "
        "array; the head turns to whoever speaks",
    )
    talks = [Utterance(text, azimuth, voice=voice) for text, azimuth, voice in TALKS]
    recording = simulate_room(talks, preset("respeaker4"), rt60_s=0.3, snr_db=15.0, gap_s=2.5, seed=seed)
    audio = recording.write(out / "scene.wav")
    config = parse_config({"array": {"preset": "respeaker4"}, "head": {"enabled": True}})
    pans: list[tuple[float, float]] = []

    def watch_head(agent: Agent) -> None:
        head = agent.parts.spatial.head
        assert head is not None
        agent.clock.add_listener(lambda _from, to: pans.append((to, head.pose().pan_deg)))

    result = await run_act(audio, out, config, setup=watch_head)
    directions = [d for d in result.of_type("sound_direction") if d["final"]]
    for talk, direction in zip(recording.utterances, directions, strict=False):
        error = abs(wrap180(direction["azimuth_deg"] - talk.azimuth_deg))
        result.check(
            f'"{talk.text}" from {talk.azimuth_deg:g} degrees: heard from {direction["azimuth_deg"]:.1f} '
            f"(talker {direction['source_id']})",
            error < 10.0,
        )
    result.check(
        f"{len(directions)} directions for {len(recording.utterances)} utterances", len(directions) == 3
    )
    for talk in recording.utterances:
        pan = next((p for t, p in pans if t >= talk.end + 1.2), None)
        turned = pan is not None and abs(wrap180(pan - talk.azimuth_deg)) < 10.0
        where = f"{pan:.0f}" if pan is not None else "nowhere"
        result.check(f'after "{talk.text}" the head faces {where} degrees', turned)
    return result.ok
