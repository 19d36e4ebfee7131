"""Cutting in over a loud speaker; writes bench/results/hearing_echo.json (and prints it).
``bench/hearing.py`` includes ``measure()``.

    .venv/bin/python bench/hearing_echo.py [--quick]

The real agent answers a question at length out loud, in lockstep, with its microphone in a
simulated room (``sim/echo_room.py``: the voice its speaker plays comes back through the room's
impulse response, 30 cm from the microphone, RT60 0.3 s, and stops when it is cut). Each case runs
twice: with the echo canceller as it is (AEC3 and the linear path with its double-talk detector)
and with AEC3 alone (the baseline, in the same run).

1. Barge-in by level: the user says "stop talking please" 0, -5, -10, -15 dB relative to the echo
   the microphone hears (its RMS over the agent's last seconds of speech), and -18 dB for the
   margin, at three moments of the answer (2.7 to 3.7 s into it, the first seconds the echo path is
   learnt): how often it cut in, and false barge-ins and pauses (the agent's voice held) before it.
2. The agent alone at several loudspeaker volumes (3 overdrives the microphone): false barge-ins,
   pauses, and how often the VAD fired at all while the agent spoke.
3. The first answer: the echo left in what the listener hears in its first 2 s against the steady
   state (dB below the echo at the microphone, the higher the better; while only the agent speaks
   the canceller hands the listener silence, so its figure is that of silence), the same for the
   linear filter's own residual (which the listener gets only where the user speaks over the
   agent: how well the echo path is learnt), whether the VAD fired, and how long the microphone
   was held before the echo path was learnt.
4. Cost per 10 ms frame: the canceller against AEC3 alone, on the same audio, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.files import FileRun
from avagent.agent.resources import Resources
from avagent.core.events import Transcript
from avagent.core.messages import SAMPLE_RATE
from avagent.core.stage import Stage
from avagent.perception.double_talk import DoubleTalkSettings, Verdict
from avagent.perception.echo import EchoCanceller
from avagent.perception.echo_linear import LinearEchoFilter
from avagent.policy.base import Actions
from avagent.sim.echo_room import EchoRoomSource, UserLine, speaker_echo_path
from avagent.sim.voices import speak

RESULTS = Path(__file__).resolve().parent / "results"
ANSWER = (
    "Let me tell you a long story. It begins on a quiet morning. "
    "The robot woke up and looked around. Then it went on and on."
)
MODES = {"canceller": DoubleTalkSettings(), "aec3_alone": None}


class Talkative:
    """A policy with a long answer to everything."""

    name = "talkative"

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        await actions.say(ANSWER)


class RecordedFilter(LinearEchoFilter):
    """The linear filter, keeping its residual."""

    def __init__(self) -> None:
        super().__init__()
        self.residual: list[np.ndarray] = []

    def filter(self, played: np.ndarray, mic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        echo, residual = super().filter(played, mic)
        self.residual.append(residual)
        return echo, residual


class RecordedCanceller(EchoCanceller):
    """The canceller, keeping what it hands the listener."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.out: list[np.ndarray] = []

    def process(self, mic: np.ndarray) -> np.ndarray:
        cleaned = super().process(mic)
        self.out.append(cleaned)
        return cleaned


async def one_run(
    resources: Resources,
    *,
    volume: float,
    double_talk: DoubleTalkSettings | None,
    cut_in: tuple[float, float] | None,
) -> dict[str, Any]:
    """One answer in the room; ``cut_in``: (when, dB relative to the echo) of the user's line."""
    question = speak("what time is it", voice="en-us+f2")
    lines = [UserLine(0.5, question / np.abs(question).max() * 0.3)]
    said = speak("stop talking please", voice="en-us+m3")
    if cut_in is not None:
        lines.append(UserLine(cut_in[0], said, cut_in[1]))
    path = speaker_echo_path() * volume
    rooms: list[EchoRoomSource] = []

    def source(agent: Agent) -> Stage:
        rooms.append(
            EchoRoomSource(
                lines, 10.0, agent.bus, agent.clock, path, playback_rate=agent.playback.sample_rate
            )
        )
        return rooms[0]

    run = FileRun(None, AgentConfig(), resources=resources, policy=Talkative(), source=source)
    echo = RecordedCanceller(run.agent.playback.sample_rate, double_talk=double_talk, same_start=True)
    echo.linear = linear = RecordedFilter()
    assert run.speaker is not None
    run.speaker.add_sink(rooms[0].played)
    run.speaker.add_sink(echo.played)
    run.agent.parts.listener.echo = echo
    result = await run.run()
    events = result.dicts()
    out = np.concatenate(echo.out) if echo.out else np.zeros(0)
    return {
        "events": events,
        "out": out,
        "echo": rooms[0].echo,
        "linear": np.concatenate(linear.residual) if linear.residual else np.zeros(0),
        "held_s": echo.verdicts[Verdict.HOLD] / 100,
        "user_s": said.shape[0] / SAMPLE_RATE,
    }


def _times(events: list[dict[str, Any]], kind: str) -> list[float]:
    return [float(e["t"]) for e in events if e["type"] == kind]


def barge_in_by_level(resources: Resources, quick: bool) -> dict[str, Any]:
    moments = [4.5, 5.5] if quick else [4.5, 5.0, 5.5]
    rows: dict[str, Any] = {}
    for mode, settings in MODES.items():
        by_level: dict[str, Any] = {}
        for level in (0.0, -5.0, -10.0, -15.0, -18.0):
            cut = false_barge = false_pause = 0
            for at in moments:
                run = asyncio.run(one_run(resources, volume=1.0, double_talk=settings, cut_in=(at, level)))
                ev, end = run["events"], at + run["user_s"] + 0.3
                cut += any(at <= t <= end for t in _times(ev, "barge_in"))
                false_barge += sum(1 for t in _times(ev, "barge_in") if t < at)
                false_pause += sum(1 for t in _times(ev, "pause_speaking") if t < at)
            by_level[f"{level:g} dB"] = {
                "barged_in": f"{cut} of {len(moments)}",
                "false_barge_ins_before": false_barge,
                "false_pauses_before": false_pause,
            }
        rows[mode] = by_level
    return rows


def agent_alone(resources: Resources, quick: bool) -> dict[str, Any]:
    volumes = [0.3, 1.0, 3.0] if quick else [0.1, 0.3, 1.0, 2.0, 3.0]
    rows: dict[str, Any] = {}
    for mode, settings in MODES.items():
        by_volume: dict[str, Any] = {}
        for volume in volumes:
            run = asyncio.run(one_run(resources, volume=volume, double_talk=settings, cut_in=None))
            ev = run["events"]
            start = _times(ev, "speaking_started")[0]
            echo = run["echo"]
            by_volume[f"volume {volume:g}"] = {
                "echo_peak_at_mic": round(float(np.abs(echo).max()), 3),
                "false_barge_ins": len(_times(ev, "barge_in")),
                "false_pauses": len(_times(ev, "pause_speaking")),
                "vad_fired_while_the_agent_spoke": sum(1 for t in _times(ev, "speech_started") if t > start),
            }
        rows[mode] = by_volume
    return rows


def _below_echo(
    out: np.ndarray, echo: np.ndarray, t0: float, t1: float, lag: int = SAMPLE_RATE // 100
) -> float:
    """How far (dB) ``out`` in [t0, t1) lies below the echo at the microphone (what the listener
    hears comes ``lag``, 10 ms, after the microphone; the linear filter's residual does not)."""
    i0, i1 = round(t0 * SAMPLE_RATE), round(t1 * SAMPLE_RATE)
    heard = out[i0 + lag : i1 + lag]
    return round(float(10 * np.log10(np.mean(echo[i0:i1] ** 2) / (np.mean(heard**2) + 1e-12))), 1)


def first_answer(resources: Resources) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for mode, settings in MODES.items():
        run = asyncio.run(one_run(resources, volume=1.0, double_talk=settings, cut_in=None))
        ev, out, echo = run["events"], run["out"], run["echo"]
        start = _times(ev, "speaking_started")[0]
        end = _times(ev, "speaking_ended")[-1]
        first_end = _times(ev, "speaking_ended")[0]
        fired = [t for t in _times(ev, "speech_started") if start <= t <= first_end + 0.3]
        residual = run["linear"]
        ran = residual.shape[0] > 0

        rows[mode] = {
            "echo_removed_first_2s_db": _below_echo(out, echo, start, start + 2.0),
            "echo_removed_steady_db": _below_echo(out, echo, start + 4.0, end),
            "linear_filter_removed_first_2s_db": (
                _below_echo(residual, echo, start, start + 2.0, lag=0) if ran else None
            ),
            "linear_filter_removed_steady_db": _below_echo(residual, echo, start + 4.0, end, lag=0)
            if ran
            else None,
            "vad_fired_in_first_answer": bool(fired),
            "microphone_held_s": run["held_s"],
        }
    return rows


def cost_per_frame() -> dict[str, Any]:
    """Milliseconds per 10 ms frame on 8 s of speech and its echo, canceller against AEC3 alone."""
    voice = np.concatenate([speak(ANSWER, voice="en-us")] * 2)[: 8 * SAMPLE_RATE] * 0.5
    echo = np.convolve(voice, speaker_echo_path())[: voice.shape[0]]
    mic = (echo + np.random.default_rng(3).standard_normal(echo.shape[0]) * 3e-4).astype(np.float32)
    figures: dict[str, float] = {}
    for mode, settings in MODES.items():
        canceller = EchoCanceller(SAMPLE_RATE, double_talk=settings, same_start=True)
        started = time.perf_counter()
        for i in range(0, mic.shape[0] - 511, 512):
            canceller.played(voice[i : i + 512].astype(np.float32))
            canceller.process(mic[i : i + 512])
        figures[f"{mode}_ms_per_frame"] = round((time.perf_counter() - started) / canceller.frames * 1000, 3)
    figures["ratio"] = round(figures["canceller_ms_per_frame"] / figures["aec3_alone_ms_per_frame"], 2)
    figures["canceller_ms_per_32ms_block"] = round(figures["canceller_ms_per_frame"] * 3.2, 3)
    return figures


def measure(quick: bool = False) -> dict[str, Any]:
    """Every figure of this benchmark (``quick``: fewer moments and volumes)."""
    resources = Resources(AgentConfig())
    asyncio.run(resources.start())
    try:
        figures: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": quick}
        print("1/4 barge-in by level", file=sys.stderr)
        figures["barge_in_by_level"] = barge_in_by_level(resources, quick)
        print("2/4 the agent alone", file=sys.stderr)
        figures["agent_alone"] = agent_alone(resources, quick)
        print("3/4 the first answer", file=sys.stderr)
        figures["first_answer"] = first_answer(resources)
        print("4/4 cost", file=sys.stderr)
        figures["cost"] = cost_per_frame()
    finally:
        asyncio.run(resources.stop())
    return figures


def main() -> None:
    figures = measure(quick="--quick" in sys.argv)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hearing_echo.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
