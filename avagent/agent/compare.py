"""What a replay did differently from the recorded session (``avagent replay --compare``).

Both sides are lists of events as the JSON contract has them. They are compared turn by turn:
what was heard (the final transcript), the tool calls with their arguments, what the agent said,
and how long after the end of the user's speech it answered (the turn's ``latency``: the first
audio, or else the first ``say``), beyond a tolerance. Turns are paired by what was heard, so a
turn heard in one and not the other is one difference, not a shift of every turn after it. What
the agent said or did outside any turn (a notice at start) is compared as a turn of its own.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOLERANCE_MS = 250.0

NOT_REPLAYED = frozenset({"actuator"})
"""Event types a replay does not make: it does not run the tools that move things."""


@dataclass
class TurnSummary:
    """One turn, as the events tell it."""

    turn: int | None
    heard: str | None = None
    calls: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    delay_ms: float | None = None
    answered: bool = False
    """Its latency was reported: the answer got under way."""

    def label(self) -> str:
        if self.turn is None:
            return "outside any turn"
        return f"turn {self.turn}" + (f" ({self.heard!r})" if self.heard else "")


@dataclass(frozen=True, slots=True)
class Difference:
    turn: int | None
    what: str
    """``heard``, ``tool_calls``, ``said``, ``delay``, ``only_recorded``, ``only_replayed``."""
    recorded: Any
    replayed: Any
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"turn": self.turn, "what": self.what, "recorded": self.recorded, "replayed": self.replayed}


def call_text(name: str, args: Any) -> str:
    """A tool call for people: ``turn(direction='left', degrees=90)``."""
    if not isinstance(args, dict):
        return f"{name}(...)"
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def answer_delay(steps: Any) -> float | None:
    if not isinstance(steps, dict):
        return None
    for step in ("first_audio", "say", "tool_call"):
        value = steps.get(step)
        if isinstance(value, int | float):
            return float(value)
    return None


def summarise(events: list[dict[str, Any]]) -> list[TurnSummary]:
    """The turns of a session, in the order they began (what was said outside any turn first)."""
    turns: dict[int | None, TurnSummary] = {None: TurnSummary(None)}
    for event in events:
        turn = event.get("turn")
        key = turn if isinstance(turn, int) else None
        summary = turns.setdefault(key, TurnSummary(key))
        kind = event.get("type")
        if kind == "transcript" and event.get("final", True) and key is not None:
            summary.heard = str(event.get("text", ""))
        elif kind == "tool_call":
            summary.calls.append(call_text(str(event.get("name")), event.get("args")))
        elif kind == "say":
            summary.said.append(str(event.get("text", "")))
        elif kind == "latency" and key is not None:
            summary.delay_ms = answer_delay(event.get("steps_ms"))
            summary.answered = True
    return list(turns.values())


def comparable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as a replay can reproduce them: without the effects of running tools and without
    wall-clock figures (``latency.wall_ms``), which no two runs share."""
    kept = []
    for event in events:
        if event.get("type") in NOT_REPLAYED:
            continue
        if event.get("type") == "latency":
            event = {k: v for k, v in event.items() if k != "wall_ms"}
        kept.append(event)
    return kept


def compare(
    recorded: list[dict[str, Any]],
    replayed: list[dict[str, Any]],
    *,
    tolerance_ms: float = DEFAULT_TOLERANCE_MS,
    complete: bool = True,
) -> list[Difference]:
    """What differs between a recorded session and its replay. With ``complete`` False (the
    recording was cut short) only the turns the recording saw answered are compared."""
    old, new = summarise(recorded), summarise(replayed)
    differences = _pair(old[0], new[0], tolerance_ms)
    old_turns, new_turns = old[1:], new[1:]
    if not complete:
        while old_turns and not old_turns[-1].answered:
            old_turns.pop()
        new_turns = new_turns[: len(old_turns)]
    matcher = difflib.SequenceMatcher(
        a=[t.heard or "" for t in old_turns], b=[t.heard or "" for t in new_turns], autojunk=False
    )
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        pairs = list(zip(old_turns[a0:a1], new_turns[b0:b1], strict=False))
        for a, b in pairs:
            differences += _pair(a, b, tolerance_ms)
        for a in old_turns[a0 + len(pairs) : a1] if op != "equal" else ():
            differences.append(
                Difference(a.turn, "only_recorded", a.heard, None, f"{a.label()}: not in the replay")
            )
        for b in new_turns[b0 + len(pairs) : b1] if op != "equal" else ():
            differences.append(
                Difference(
                    b.turn, "only_replayed", None, b.heard, f"replay {b.label()}: not in the recording"
                )
            )
    return differences


def _pair(a: TurnSummary, b: TurnSummary, tolerance_ms: float) -> list[Difference]:
    found: list[Difference] = []
    where = a.label() if a.turn == b.turn or a.turn is None else f"{a.label()} (replay turn {b.turn})"
    if a.heard != b.heard:
        found.append(Difference(a.turn, "heard", a.heard, b.heard, f"{where}: replay heard {b.heard!r}"))
    if a.calls != b.calls:
        found.append(
            Difference(
                a.turn,
                "tool_calls",
                a.calls,
                b.calls,
                f"{where}: tool calls {_list(a.calls, quote=False)} -> {_list(b.calls, quote=False)}",
            )
        )
    if a.said != b.said:
        found.append(
            Difference(a.turn, "said", a.said, b.said, f"{where}: said {_list(a.said)} -> {_list(b.said)}")
        )
    if a.delay_ms is not None and b.delay_ms is not None and abs(a.delay_ms - b.delay_ms) > tolerance_ms:
        found.append(
            Difference(
                a.turn,
                "delay",
                a.delay_ms,
                b.delay_ms,
                f"{where}: answered after {a.delay_ms:.0f} ms, in the replay after {b.delay_ms:.0f} ms "
                f"(tolerance {tolerance_ms:.0f} ms)",
            )
        )
    return found


def _list(items: list[str], *, quote: bool = True) -> str:
    return "; ".join(repr(i) if quote else i for i in items) if items else "(none)"
