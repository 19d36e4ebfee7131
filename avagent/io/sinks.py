"""Where results go: a WAV file for the agent's voice, JSON lines for its events."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import numpy as np
import soundfile as sf

from avagent.core.bus import Bus
from avagent.core.events import Event
from avagent.core.messages import to_int16


class WavSink:
    """Writes mono float blocks to a 16-bit WAV file, keeping the header valid as it goes."""

    def __init__(self, path: str | Path, sample_rate: int, *, sync_every_s: float = 1.0) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._file: sf.SoundFile | None = sf.SoundFile(
            str(self.path), mode="w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="WAV"
        )
        self._sync_every = int(sync_every_s * sample_rate)
        self._since_sync = 0
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        if self._file is None:
            return
        self._file.write(to_int16(block))
        self.frames += block.shape[0]
        self._since_sync += block.shape[0]
        if self._since_sync >= self._sync_every:
            # Rewrites the header: a crash later still leaves a readable file of what was said.
            self._file.flush()
            self._since_sync = 0

    def close(self) -> None:
        """Finish the file; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None


class JsonlSink:
    """Writes every public event as one JSON object per line (the event contract)."""

    name = "jsonl"
    consumes = (Event,)
    produces: tuple[type, ...] = ()

    def __init__(self, bus: Bus, out: IO[str] | None = None, *, path: str | Path | None = None) -> None:
        self._owned = path is not None
        self._out: IO[str] = open(path, "w", encoding="utf-8") if path is not None else (out or sys.stdout)  # noqa: SIM115
        self._events = bus.subscribe(Event, name="jsonl.events", maxsize=1024)

    async def run(self) -> None:
        try:
            async for event in self._events:
                self.write(event)
        finally:
            self._out.flush()

    def write(self, event: Event) -> None:
        self._out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._owned and not self._out.closed:
            self._out.close()
