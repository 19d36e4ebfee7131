"""``avagent demo``: what the agent does, offline, on scenes it makes itself and checks against the
truth. Each act synthesises its input, runs the real agent on it, prints a readable timeline, writes
what was heard, what the agent said and every event, and reports each check:

- commands: spoken commands (and one the agent cannot do) in background noise;
- sight: a video of two drawn faces, "what do you see" and "who is speaking", with no model;
- safety: the envelope clamps a turn, "stop" is the e-stop, a turn is refused until it is cleared;
- room: two talkers in a simulated reverberant room; the agent says where each voice came from and
  turns its head to whoever speaks;
- replay: the session recorded to MCAP, replayed through a fresh agent, and nothing differs;
- hearing: a user 15 dB quieter than the agent's own echo cuts in over its loud speaker, and free
  speech heard offline by whisper (when its extra is installed).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from avagent.cli.demo import act, commands
from avagent.cli.demo.hearing_act import run_hearing
from avagent.cli.demo.replay_act import run_replay
from avagent.cli.demo.room import run_room
from avagent.cli.demo.safety import run_safety
from avagent.cli.demo.sight import run_sight
from avagent.core.files import check_output_folder

ACTS = ("sight", "safety", "room", "replay", "hearing")
"""The acts after the commands, each in a folder of its own."""


def run_demo(out: Path, *, snr_db: float = 15.0, seed: int = 7) -> int:
    """Run every act; 0 when every check passed."""
    # Before anything runs: a folder that cannot be made or written ends here, in one line.
    check_output_folder(out, commands.FILES)
    for name in ACTS:
        check_output_folder(out / name, act.FILES)
    outcomes: dict[str, bool | None] = {"commands": commands.run_commands(out, snr_db=snr_db, seed=seed)}
    outcomes["sight"] = asyncio.run(run_sight(out / "sight", seed=seed))
    outcomes["safety"] = asyncio.run(run_safety(out / "safety", seed=seed))
    outcomes["room"] = asyncio.run(run_room(out / "room", seed=seed))
    outcomes["replay"] = asyncio.run(run_replay(out / "replay", seed=seed))
    outcomes["hearing"] = asyncio.run(run_hearing(out / "hearing", seed=seed))
    print("\navagent demo: every act", file=sys.stderr)
    for name, ok in outcomes.items():
        mark = "skipped" if ok is None else ("ok" if ok else "BAD")
        folder = out if name == "commands" else out / name
        print(f"  {name:9} {mark:8} {folder}", file=sys.stderr)
    return 0 if all(ok is not False for ok in outcomes.values()) else 1
