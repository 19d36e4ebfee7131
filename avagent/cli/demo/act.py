"""What every act of the demo shares: run the real agent on a recording it made, keep the timeline,
the events and the voice, and report each check against the truth in one line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.files import FileRun
from avagent.cli.timeline import TimelinePrinter
from avagent.io.sinks import WavSink

FILES = ("scene.wav", "replies.wav", "events.jsonl")
"""What each act writes in its own folder."""


@dataclass
class ActResult:
    """What the agent did in one act, as the JSON event contract has it."""

    events: list[dict[str, Any]]
    agent: Agent
    checks: list[tuple[str, bool]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def check(self, what: str, ok: bool) -> None:
        """Report one check: ``[ok ]`` or ``[BAD]`` and what was checked."""
        self.checks.append((what, ok))
        print(f"  [{'ok ' if ok else 'BAD'}] {what}", file=sys.stderr)

    @property
    def ok(self) -> bool:
        return all(ok for _what, ok in self.checks)


async def run_act(
    scene: Path, out: Path, config: AgentConfig, *, setup: Callable[[Agent], None] | None = None
) -> ActResult:
    """Run a fresh agent with ``config`` on the recording ``scene``: the timeline to stdout, its
    voice to ``out/replies.wav`` and its events to ``out/events.jsonl``."""
    run = FileRun(scene, config, keep=False)
    agent = run.agent
    printer = TimelinePrinter(agent.bus, sys.stdout)
    agent.add_stage(printer)
    wav = WavSink(out / "replies.wav", agent.playback.sample_rate)
    assert run.speaker is not None
    run.speaker.add_sink(wav.write)
    if setup is not None:
        setup(agent)
    try:
        await run.run()
    finally:
        wav.close()
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for event in printer.events:
            f.write(json.dumps(event) + "\n")
    return ActResult(printer.events, agent)


def heading(title: str, about: str) -> None:
    print(f"\navagent demo: {title}", file=sys.stderr)
    print(f"  {about}\n", file=sys.stderr)
    sys.stdout.flush()
