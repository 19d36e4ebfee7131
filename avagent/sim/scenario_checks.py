"""Checking what an agent did against a scenario's expectations (``sim/scenarios.py``).

The events (as the JSON contract has them) are cut into one window per user turn: from the
moment the turn's audio began to the moment the next one began. A turn's expectations are met in
order inside its window: each ``tool_call``, ``say`` and ``transcript`` must come after the event
that met the one before it; ``no_tool_call`` looks at the whole window. ``within_ms`` is measured
from the end of the user's speech: where the synthesised words end, or else where the agent heard
the turn end.

The same checks are there from Python: ``TurnResult.expect_tool_call`` and friends raise
``AssertionError`` with the same account ``avagent test`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from avagent.sim.scenarios import Expectation, LoadedScenario, TextMatch, ToolCallMatch


@dataclass(frozen=True, slots=True)
class Window:
    """Where one user turn lies in media time."""

    start: float
    speech_end: float | None
    """Where the user's words end, when known (synthesised text)."""
    end: float | None
    """Where the next turn begins (None: the last turn)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation and whether it was met."""

    expected: str
    ok: bool
    detail: str = ""


def _args_fit(expected: dict[str, Any], actual: Any) -> bool:
    if not isinstance(actual, dict):
        return not expected
    for key, want in expected.items():
        if key not in actual:
            return False
        got = actual[key]
        same_number = isinstance(want, int | float) and isinstance(got, int | float) and want == got
        if not (got == want or same_number or str(got).casefold() == str(want).casefold()):
            return False
    return True


def call_text(event: dict[str, Any]) -> str:
    args = event.get("args")
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else "..."
    return f"{event.get('name')}({shown})"


@dataclass
class TurnResult:
    """One user turn: what happened in its window and which expectations held."""

    number: int
    user: str
    window: Window
    events: list[dict[str, Any]]
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def heard(self) -> list[str]:
        return [
            str(e.get("text", "")) for e in self.events if e.get("type") == "transcript" and e.get("final")
        ]

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "tool_call"]

    @property
    def said(self) -> list[str]:
        return [str(e.get("text", "")) for e in self.events if e.get("type") == "say"]

    def what_happened(self) -> str:
        heard = "; ".join(repr(h) for h in self.heard) or "nothing"
        calls = "; ".join(call_text(c) for c in self.tool_calls) or "none"
        said = "; ".join(repr(s) for s in self.said) or "nothing"
        return f"heard {heard}; tool calls {calls}; said {said}"

    def account(self) -> str:
        """The turn for people: what was expected, what failed, what happened."""
        lines = [f"turn {self.number} ({self.user}): {'passed' if self.passed else 'FAILED'}"]
        for check in self.checks:
            mark = "ok  " if check.ok else "FAIL"
            lines.append(f"  {mark} {check.expected}" + (f": {check.detail}" if check.detail else ""))
        lines.append(f"  what happened: {self.what_happened()}")
        return "\n".join(lines)

    # --- assertions for pytest -------------------------------------------------------------

    def expect_tool_call(self, name: str, *, within_ms: float | None = None, **args: Any) -> None:
        self._expect(Expectation(tool_call=ToolCallMatch(name=name, args=args, within_ms=within_ms)))

    def expect_no_tool_call(self, name: str | None = None) -> None:
        self._expect(Expectation(no_tool_call=name if name is not None else True))

    def expect_say(
        self, contains: str | None = None, *, matches: str | None = None, within_ms: float | None = None
    ) -> None:
        self._expect(Expectation(say=TextMatch(contains=contains, matches=matches, within_ms=within_ms)))

    def expect_transcript(self, contains: str | None = None, *, matches: str | None = None) -> None:
        self._expect(Expectation(transcript=TextMatch(contains=contains, matches=matches)))

    def _expect(self, expectation: Expectation) -> None:
        check, _ = check_one(expectation, self.events, 0, self.window)
        if not check.ok:
            raise AssertionError(
                f"turn {self.number} ({self.user}): expected {check.expected}: {check.detail}; "
                f"{self.what_happened()}"
            )


@dataclass
class ScenarioResult:
    """A scenario run: each turn's result, and everything the agent did."""

    name: str
    source: str
    turns: list[TurnResult]
    events: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    """What went wrong around the checks (a turn the agent never finished with)."""

    @property
    def passed(self) -> bool:
        return not self.problems and all(t.passed for t in self.turns)

    def turn(self, number: int) -> TurnResult:
        """Turn ``number``, counted from 1 as in the account."""
        return self.turns[number - 1]

    def account(self) -> str:
        head = f"scenario {self.name} ({self.source}): {'passed' if self.passed else 'FAILED'}"
        return "\n".join([head, *self.problems, *(t.account() for t in self.turns)])

    def assert_passed(self) -> None:
        if not self.passed:
            raise AssertionError(self.account())


def check_one(
    expectation: Expectation, events: list[dict[str, Any]], cursor: int, window: Window
) -> tuple[Check, int]:
    """Whether ``expectation`` holds in a turn's ``events`` from ``cursor`` on; the next cursor."""
    expected = expectation.describe()
    if expectation.no_tool_call is not None:
        only = None if expectation.no_tool_call is True else expectation.no_tool_call
        calls = [
            e for e in events if e.get("type") == "tool_call" and (only is None or e.get("name") == only)
        ]
        if calls:
            return Check(expected, False, f"got {'; '.join(call_text(c) for c in calls)}"), cursor
        return Check(expected, True), cursor
    kind, fits = _matcher(expectation)
    later = [i for i in range(cursor, len(events)) if events[i].get("type") == kind]
    found = next((i for i in later if fits(events[i])), None)
    if found is None:
        earlier = any(fits(e) for e in events[:cursor] if e.get("type") == kind)
        where = " (only before the expectation ahead of it)" if earlier else ""
        return Check(expected, False, f"no such {kind}{where}"), cursor
    deadline = expectation.deadline_ms
    if deadline is not None:
        delay_ms = (float(events[found].get("t", 0.0)) - _speech_end(events, window)) * 1000.0
        if delay_ms > deadline:
            return Check(expected, False, f"it came {delay_ms:.0f} ms after the end of the speech"), found + 1
    return Check(expected, True), found + 1


def _matcher(expectation: Expectation) -> tuple[str, Any]:
    if expectation.tool_call is not None:
        call = expectation.tool_call
        return "tool_call", lambda e: e.get("name") == call.name and _args_fit(call.args, e.get("args"))
    text = expectation.say or expectation.transcript
    assert text is not None
    kind = "say" if expectation.say is not None else "transcript"

    def fits(event: dict[str, Any]) -> bool:
        if kind == "transcript" and not event.get("final", True):
            return False
        return text.fits(str(event.get("text", "")))

    return kind, fits


def _speech_end(events: list[dict[str, Any]], window: Window) -> float:
    if window.speech_end is not None:
        return window.speech_end
    ends = [
        float(e["end"])
        for e in events
        if e.get("type") == "turn_ended" and isinstance(e.get("end"), int | float)
    ]
    return ends[0] if ends else window.start


def check_scenario(
    loaded: LoadedScenario, events: list[dict[str, Any]], windows: list[Window]
) -> ScenarioResult:
    """Every turn of ``loaded`` checked against ``events``, cut into ``windows`` (one per turn)."""
    turns = []
    for number, (turn, window) in enumerate(zip(loaded.scenario.turns, windows, strict=True), 1):
        inside = [e for e in events if _inside(e, window)]
        result = TurnResult(number, turn.describe(), window, inside)
        cursor = 0
        for expectation in turn.expect:
            check, cursor = check_one(expectation, inside, cursor, window)
            result.checks.append(check)
        turns.append(result)
    return ScenarioResult(loaded.name, loaded.source, turns, events)


def _inside(event: dict[str, Any], window: Window) -> bool:
    t = event.get("t")
    if not isinstance(t, int | float):
        return False
    return t >= window.start and (window.end is None or t < window.end)
