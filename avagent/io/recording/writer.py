"""An MCAP file written on a thread of its own, so that writing never holds up the audio path.

Messages are handed over with ``put`` from any thread (the event loop, a sound card's callback)
and written in the order they arrive; a payload may be a function that makes the bytes (a JPEG
encoding), run on the writer's thread. Every ``flush_s`` the chunk in progress is closed and
handed to the operating system, so a process that crashes or is killed loses at most that much,
and a file cut short is readable up to its last whole chunk. ``stop`` writes the file's summary.

Bounded: at most ``max_backlog_bytes`` wait to be written (more is dropped and counted: the disk
is not keeping up), and the file stops growing at ``max_file_bytes``. Either is reported once in
``problem``, as is a failure to write (a full disk): the session goes on unrecorded, never stopped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mcap.writer import CompressionType, Writer

from avagent.core.files import create_for_writing, size_text
from avagent.core.text import describe_error
from avagent.io.recording.format import (
    TOPICS,
    channel_schema,
    message_encoding,
    nanoseconds,
)

Payload = bytes | Callable[[], bytes]

DRAIN_S = 0.5
"""How often the writer's thread takes what was handed over (and at each flush)."""


@dataclass(frozen=True, slots=True)
class RecordSettings:
    """What a session's recording holds and its bounds (``record:`` in the config)."""

    video: bool = True
    """Record the camera's or the call's frames (JPEG)."""
    voice: bool = True
    """Record the agent's own voice."""
    jpeg_quality: int = 75
    flush_s: float = 1.0
    """At most this much of the session is lost when the process crashes or is killed."""
    max_file_mb: float = 4096.0
    """The file stops growing here; the rest of the session is not recorded (and that is said)."""
    max_backlog_mb: float = 64.0
    """What may wait to be written; beyond it messages are dropped and counted."""


@dataclass(frozen=True, slots=True)
class _Item:
    topic: str
    t: float
    payload: Payload
    size: int


class RecordingWriter:
    """One MCAP file, written as the session goes. ``start`` opens it; ``stop`` finishes it."""

    def __init__(
        self,
        path: str | Path,
        metadata: dict[str, str],
        *,
        flush_s: float = 1.0,
        max_file_bytes: int = 4 << 30,
        max_backlog_bytes: int = 64 << 20,
    ) -> None:
        self.path = Path(path)
        self._metadata = dict(metadata)
        self._flush_s = flush_s
        self._max_file = max_file_bytes
        self._max_backlog = max_backlog_bytes
        self._pending: list[_Item] = []
        self._wake = threading.Event()
        self._failed = False
        self._lock = threading.Lock()
        self._backlog = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._started = False
        self.messages = 0
        """Messages written so far."""
        self.dropped = 0
        """Messages not written: the backlog was full, the file full, or writing failed."""
        self.bytes = 0
        """Bytes in the file at the last flush."""
        self.cpu_s = 0.0
        """CPU seconds the writer's thread has used (known once it has stopped)."""
        self.problem: str | None = None
        """Why (some of) the session is not recorded, once something went wrong."""

    def start(self) -> None:
        """Create the file (``InputError`` when it cannot be) and start writing. Safe to call twice."""
        if self._started:
            return
        self._started = True
        stream = create_for_writing(self.path)
        try:
            writer = Writer(stream, compression=CompressionType.ZSTD)
            writer.start(profile="", library="avagent")
            writer.add_metadata("avagent", self._metadata)
            channels: dict[str, int] = {}
            for topic in TOPICS:
                name, encoding, data = channel_schema(topic)
                schema = writer.register_schema(name, encoding, data) if name else 0
                channels[topic] = writer.register_channel(topic, message_encoding(topic), schema)
            writer.flush()  # type: ignore[no-untyped-call]
        except BaseException:
            stream.close()
            raise
        self._thread = threading.Thread(
            target=self._run, args=(stream, writer, channels), name="avagent-recording", daemon=True
        )
        self._thread.start()

    def put(self, topic: str, t: float, payload: Payload, size: int | None = None) -> bool:
        """Queue one message (from any thread); False when it was dropped. ``size``: the memory the
        payload holds until written (the bytes' length by default)."""
        held = size if size is not None else len(payload) if isinstance(payload, bytes) else 0
        with self._lock:
            if self._closed:
                return False
            if self._backlog + held > self._max_backlog:
                self.dropped += 1
                self._note(f"the disk is not keeping up: more than {size_text(self._max_backlog)} waited")
                return False
            self._backlog += held
            self._pending.append(_Item(topic, t, payload, held))
        return True

    def stop(self) -> None:
        """Write what is queued, finish the file and wait for the thread. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _count_dropped(self) -> None:
        with self._lock:
            self.dropped += 1

    def _note(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def _run(self, stream: BinaryIO, writer: Writer, channels: dict[str, int]) -> None:
        next_flush = time.monotonic() + self._flush_s
        unflushed = False
        self._failed = False
        cpu_start = time.thread_time()
        try:
            while True:
                # Woken a few times a second, not for every message: a thread switch per audio
                # block would cost more than the writing does.
                self._wake.wait(max(0.0, min(DRAIN_S, next_flush - time.monotonic())))
                with self._lock:
                    items, self._pending = self._pending, []
                    closing = self._closed
                for item in items:
                    unflushed = self._write(item, writer, channels) or unflushed
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self._flush_s
                    if unflushed and not self._failed:
                        self._failed = not self._flush(writer, stream)
                        unflushed = False
                if closing:
                    break
        finally:
            if not self._failed:
                with contextlib.suppress(OSError):
                    writer.finish()  # type: ignore[no-untyped-call]
                    self.bytes = stream.tell()
            with contextlib.suppress(OSError):
                stream.close()
            self.cpu_s = time.thread_time() - cpu_start

    def _write(self, item: _Item, writer: Writer, channels: dict[str, int]) -> bool:
        """Add one message to the chunk in progress; whether it was added."""
        with self._lock:
            self._backlog -= item.size
        if self._failed or self.bytes >= self._max_file:
            self._count_dropped()
            return False
        try:
            data = item.payload() if callable(item.payload) else item.payload
            ns = nanoseconds(item.t)
            writer.add_message(channels[item.topic], log_time=ns, data=data, publish_time=ns)
        except OSError as exc:
            self._failed = True
            self._count_dropped()
            self._note(f"cannot write {self.path}: {describe_error(exc)}")
            return False
        except Exception as exc:  # one message that cannot be encoded; the rest go on
            self._count_dropped()
            self._note(f"a {item.topic} message was left out: {describe_error(exc)}")
            return False
        self.messages += 1
        return True

    def _flush(self, writer: Writer, stream: BinaryIO) -> bool:
        try:
            writer.flush()  # type: ignore[no-untyped-call]
            self.bytes = stream.tell()
        except OSError as exc:
            self._note(f"cannot write {self.path}: {describe_error(exc)}")
            return False
        if self.bytes >= self._max_file:
            self._note(
                f"{self.path} reached {size_text(self._max_file)}; the rest of the session is not recorded"
            )
        return True
