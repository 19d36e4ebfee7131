"""Where results go: a WAV file for the agent's voice, JSON lines for its events."""

from __future__ import annotations

import json
import logging
import os
import struct
import sys
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np

from avagent.core.bus import Bus
from avagent.core.events import Event
from avagent.core.files import create_for_writing
from avagent.core.messages import to_int16

log = logging.getLogger(__name__)


WAV_HEADER_BYTES = 44
"""A plain PCM WAV header: RIFF, fmt and data chunk headers."""

MAX_WAV_DATA_BYTES = 0xFFFFFFFF - (WAV_HEADER_BYTES - 8) - 1
"""The most audio a written WAV file holds (just under 4 GiB: a RIFF size is 32 bits), about 27
hours at 22,050 Hz. What comes after is not written, and a warning says so once."""


def wav_header(sample_rate: int, data_bytes: int) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV file holding ``data_bytes`` of samples."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        WAV_HEADER_BYTES - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        sample_rate,
        sample_rate * 2,
        2,
        16,
        b"data",
        data_bytes,
    )


class WavSink:
    """Writes mono float blocks to a 16-bit WAV file whose header stays valid as it goes.

    The header's sizes are rewritten at every ``flush`` (about every ``sync_every_s`` of audio), so
    a process killed outright (SIGKILL) leaves a file that every reader takes for all the audio up
    to the last flush. (libsndfile's own flush only syncs the data and leaves the sizes at zero,
    hence the file is written here.)"""

    def __init__(self, path: str | Path, sample_rate: int, *, sync_every_s: float = 1.0) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._file: BinaryIO | None = create_for_writing(self.path)
        self._file.write(wav_header(sample_rate, 0))
        self._sync_every = max(1, int(sync_every_s * sample_rate))
        self._since_sync = 0
        self._data_bytes = 0
        self.frames = 0
        """Frames written so far."""
        self.dropped = 0
        """Frames left out because the file was full (``MAX_WAV_DATA_BYTES``)."""

    def write(self, block: np.ndarray) -> None:
        if self._file is None:
            return
        data = np.ascontiguousarray(to_int16(block).reshape(-1), dtype="<i2").tobytes()
        room = MAX_WAV_DATA_BYTES - self._data_bytes
        if len(data) > room:
            if not self.dropped:
                log.warning(
                    "%s: the WAV file is full (4 GiB); the rest of the voice is not written", self.path
                )
            kept = room - room % 2
            self.dropped += (len(data) - kept) // 2
            data = data[:kept]
        self._file.write(data)
        written = len(data) // 2
        self._data_bytes += len(data)
        self.frames += written
        self._since_sync += written
        if self._since_sync >= self._sync_every:
            self.flush()

    def flush(self) -> None:
        """Hand everything written to the operating system and make the header say so: from here on
        a reader sees all of it, even if this process is killed."""
        if self._file is None:
            return
        self._file.flush()
        # pwrite leaves the file position at the end, where the next samples go.
        os.pwrite(self._file.fileno(), wav_header(self.sample_rate, self._data_bytes), 0)
        self._since_sync = 0

    def close(self) -> None:
        """Finish the file; safe to call twice."""
        if self._file is not None:
            self.flush()
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
