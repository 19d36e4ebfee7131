"""Pictures and lines of what happened: a timeline PNG and a readable event printer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from avagent.core.bus import Bus
from avagent.core.events import Event

_WIDTH = 1800
_MARGIN = 150
_ROWS: list[tuple[str, int]] = [
    ("input", 150),
    ("speech prob.", 70),
    ("speech", 34),
    ("turns", 34),
    ("heard", 70),
    ("tool calls", 70),
    ("agent voice", 110),
]
_COLOURS = {
    "wave": (60, 90, 140),
    "prob": (200, 120, 0),
    "speech": (70, 160, 90),
    "turn": (90, 110, 200),
    "heard": (30, 30, 30),
    "tool": (160, 50, 140),
    "voice": (190, 70, 60),
    "barge": (220, 30, 30),
    "grid": (225, 225, 225),
    "label": (80, 80, 80),
}


def render_timeline(
    path: str | Path,
    *,
    input_audio: np.ndarray,
    input_rate: int,
    output_audio: np.ndarray | None,
    output_rate: int,
    probabilities: Sequence[tuple[float, float]],
    events: Sequence[dict[str, Any]],
    title: str = "avagent timeline",
) -> Path:
    """Draw the input waveform, speech probability, speech segments, turns, transcripts, tool calls
    and the agent's voice on one time axis, and save it as a PNG."""
    duration: float = max(
        input_audio.shape[0] / input_rate,
        (output_audio.shape[0] / output_rate) if output_audio is not None else 0.0,
        max((float(e.get("t", 0.0)) for e in events), default=0.0),
        0.1,
    )
    height = 60 + sum(h for _, h in _ROWS) + 40
    image = Image.new("RGB", (_WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    plot_w = _WIDTH - _MARGIN - 20

    def x(t: float) -> float:
        return _MARGIN + t / duration * plot_w

    draw.text((_MARGIN, 15), title, fill="black", font=ImageFont.load_default(size=18))
    tops: dict[str, tuple[int, int]] = {}
    y = 50
    for name, h in _ROWS:
        tops[name] = (y, h)
        draw.rectangle([_MARGIN, y, _MARGIN + plot_w, y + h - 4], outline=_COLOURS["grid"])
        draw.text((10, y + h / 2 - 8), name, fill=_COLOURS["label"], font=font)
        y += h
    for second in range(int(duration) + 1):
        draw.line([x(second), 50, x(second), y], fill=_COLOURS["grid"])
        draw.text((x(second) - 4, y + 5), f"{second}s", fill=_COLOURS["label"], font=small)

    _waveform(draw, input_audio, input_rate, tops["input"], x, _COLOURS["wave"])
    if output_audio is not None:
        _waveform(draw, output_audio, output_rate, tops["agent voice"], x, _COLOURS["voice"])
    top, h = tops["speech prob."]
    if probabilities:
        points = [(x(t), top + (h - 6) * (1.0 - p)) for t, p in probabilities]
        draw.line(points, fill=_COLOURS["prob"], width=1)

    heard_row = 0
    tool_row = 0
    for e in events:
        kind, t = e.get("type"), float(e.get("t", 0.0))
        if kind == "speech_ended":
            _bar(draw, tops["speech"], x(e["start"]), x(e["end"]), _COLOURS["speech"])
        elif kind == "turn_ended":
            _bar(draw, tops["turns"], x(e["start"]), x(t), _COLOURS["turn"])
        elif kind == "transcript" and e.get("final", True):
            top, h = tops["heard"]
            text = f'"{e.get("text", "")}"' if e.get("text") else "(nothing recognised)"
            draw.text((x(t), top + 4 + 22 * (heard_row % 3)), text, fill=_COLOURS["heard"], font=small)
            heard_row += 1
        elif kind == "tool_call":
            top, h = tops["tool calls"]
            args = ", ".join(f"{k}={v}" for k, v in e.get("args", {}).items())
            draw.text(
                (x(t), top + 4 + 22 * (tool_row % 3)),
                f"{e['name']}({args})",
                fill=_COLOURS["tool"],
                font=small,
            )
            tool_row += 1
        elif kind == "barge_in":
            draw.line([x(t), 50, x(t), y], fill=_COLOURS["barge"], width=2)
            draw.text((x(t) + 3, 50), "barge-in", fill=_COLOURS["barge"], font=small)
    p = Path(path)
    image.save(p)
    return p


def _bar(
    draw: ImageDraw.ImageDraw, row: tuple[int, int], x0: float, x1: float, colour: tuple[int, int, int]
) -> None:
    top, h = row
    draw.rectangle([x0, top + 5, max(x1, x0 + 1), top + h - 9], fill=colour)


def _waveform(
    draw: ImageDraw.ImageDraw,
    audio: np.ndarray,
    rate: int,
    row: tuple[int, int],
    x: Any,
    colour: tuple[int, int, int],
) -> None:
    top, h = row
    mid = top + (h - 4) / 2
    mono = audio if audio.ndim == 1 else audio[:, 0]
    if mono.shape[0] == 0:
        return
    columns = int(x(mono.shape[0] / rate) - x(0)) or 1
    edges = np.linspace(0, mono.shape[0], columns + 1).astype(int)
    peak = float(np.max(np.abs(mono))) or 1.0
    for i in range(columns):
        segment = mono[edges[i] : max(edges[i + 1], edges[i] + 1)]
        amplitude = float(np.max(np.abs(segment))) / peak * (h - 10) / 2
        xi = x(edges[i] / rate)
        draw.line([xi, mid - amplitude, xi, mid + amplitude], fill=colour)


class TimelinePrinter:
    """Prints each notable event as one readable line (the human form of ``--json``)."""

    name = "timeline_printer"
    consumes = (Event,)
    produces: tuple[type, ...] = ()

    def __init__(self, bus: Bus, out: IO[str]) -> None:
        self._events = bus.subscribe(Event, name="timeline_printer.events", maxsize=1024)
        self._out = out
        self.events: list[dict[str, Any]] = []

    async def run(self) -> None:
        async for event in self._events:
            self.show(event)

    def show(self, event: Event) -> None:
        record = event.to_dict()
        self.events.append(record)
        line = describe(record)
        if line:
            self._out.write(f"{record['t']:8.2f} s  {line}\n")
            self._out.flush()


def describe(e: dict[str, Any]) -> str | None:
    """One line for a person, or None for events not worth a line."""
    kind = e["type"]
    if kind == "speech_ended":
        return f"speech {e['start']:.2f}-{e['end']:.2f} s"
    if kind == "transcript" and e.get("final", True):
        return f'heard: "{e["text"]}"' if e["text"] else "heard speech, recognised nothing"
    if kind == "tool_call":
        args = ", ".join(f"{k}={v!r}" for k, v in e["args"].items())
        return f"tool:  {e['name']}({args})"
    if kind == "tool_result" and not e["ok"]:
        return f"tool failed: {e['result']}"
    if kind == "speaking_started":
        return f'says:  "{e["text"]}"'
    if kind == "speaking_ended" and e["interrupted"] and e["played_s"] > 0:
        return f"voice cut after {e['played_s']:.2f} of {e['total_s']:.2f} s"
    if kind == "barge_in":
        return "barge-in: the user cut in"
    if kind == "estop":
        why = f": {e['reason']}" if e.get("reason") else ""
        return f"E-STOP from {e['source']}{why}: every actuator halted"
    if kind == "estop_cleared":
        return f"e-stop cleared ({e['source']})"
    if kind == "actuator" and e["cause"] in ("command", "lease", "link"):
        where = ", ".join(f"{axis} {value:g}" for axis, value in e["target"].items())
        return (
            f"moves: {e['name']} to {where}"
            if e["cause"] == "command"
            else f"halts: {e['name']} ({e['cause']})"
        )
    if kind == "scene":
        return f"scene ({e['source']}): {e['text']}"
    if kind == "latency":
        return f"answered {e['steps_ms'].get('first_audio', float('nan')):.0f} ms after the end of speech"
    if kind == "error":
        return f"error in {e['stage']}: {e['message']}"
    if kind == "overflow":
        return f"overflow: {e['stream']} dropped {e['dropped']}"
    return None
