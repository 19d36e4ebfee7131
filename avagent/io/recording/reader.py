"""Reading a recording back: its messages in the order they were written, within bounds.

A recording is input from outside. The file is read record by record, each record whole before
it is parsed and never larger than ``MAX_RECORD_BYTES``; a chunk is unpacked only up to
``MAX_CHUNK_BYTES`` and its checksum is checked. A file cut short (a crash, a kill, a copy that
stopped) is read up to its last whole chunk: ``cut`` then says where and why reading stopped, and
everything before that is there. A file that is not a recording at all is refused with one line.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard
from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Message, Metadata

from avagent.core.files import open_regular
from avagent.io.recording.format import (
    MAX_CHUNK_BYTES,
    MAX_RECORD_BYTES,
    METADATA_NAME,
    RecordingError,
)

MAGIC = b"\x89MCAP0\r\n"
_RECORD_HEAD = struct.Struct("<BQ")


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    topic: str
    t: float
    """Media time (the message's log time)."""
    data: bytes


class RecordingReader:
    """The messages of one recording file. Iterate ``messages()`` as often as needed; each pass
    reads the file again from its start."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata: dict[str, str] = {}
        """The ``avagent`` metadata: format version, versions, configuration."""
        self.cut: str | None = None
        """Why the last pass stopped before the end of a complete file (None: it did not)."""
        self.complete = False
        """The last pass reached the end of the data (the file was finished properly)."""

    def check(self) -> None:
        """Refuse at once a file that is not a readable recording (``RecordingError``)."""
        with open_regular(self.path, "recording") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise RecordingError(f"{self.path}: not an MCAP recording")

    def messages(self) -> Iterator[RecordedMessage]:
        """Every message, in file order, up to the end or to where the file stops being readable."""
        self.cut = None
        self.complete = False
        topics: dict[int, str] = {}
        with open_regular(self.path, "recording") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise RecordingError(f"{self.path}: not an MCAP recording")
            offset = len(MAGIC)
            while True:
                head = f.read(_RECORD_HEAD.size)
                if not head:
                    self.cut = f"the file ends at byte {offset}, without its summary"
                    return
                if len(head) < _RECORD_HEAD.size:
                    self.cut = f"cut short at byte {offset}, inside a record"
                    return
                opcode, length = _RECORD_HEAD.unpack(head)
                if length > MAX_RECORD_BYTES:
                    self.cut = f"a record at byte {offset} claims {length} bytes (at most {MAX_RECORD_BYTES})"
                    return
                body = f.read(length)
                if len(body) < length:
                    self.cut = f"cut short at byte {offset}, inside a record"
                    return
                offset += _RECORD_HEAD.size + length
                try:
                    yield from self._record(opcode, body, topics)
                except _DataEnd:
                    self.complete = True
                    return
                except (McapError, RecordingError, struct.error, ValueError, zstandard.ZstdError) as exc:
                    self.cut = f"the record at byte {offset - length - _RECORD_HEAD.size} is damaged ({exc})"
                    return

    def _record(self, opcode: int, body: bytes, topics: dict[int, str]) -> Iterator[RecordedMessage]:
        stream = ReadDataStream(io.BytesIO(body))
        if opcode == Opcode.DATA_END:
            raise _DataEnd
        if opcode == Opcode.METADATA:
            metadata = Metadata.read(stream)
            if metadata.name == METADATA_NAME:
                self.metadata = dict(metadata.metadata)
        elif opcode == Opcode.CHANNEL:
            channel = Channel.read(stream)
            topics[channel.id] = channel.topic
        elif opcode == Opcode.MESSAGE:
            message = Message.read(stream, len(body))
            yield from _known(message, topics)
        elif opcode == Opcode.CHUNK:
            yield from _unpack(Chunk.read(stream), topics)


class _DataEnd(Exception):
    """The data section is over: what follows is the summary."""


def _known(message: Message, topics: dict[int, str]) -> Iterator[RecordedMessage]:
    topic = topics.get(message.channel_id)
    if topic is not None:
        yield RecordedMessage(topic, message.log_time / 1e9, message.data)


def _unpack(chunk: Chunk, topics: dict[int, str]) -> Iterator[RecordedMessage]:
    """The channels and messages inside a chunk, unpacked within ``MAX_CHUNK_BYTES``."""
    size = chunk.uncompressed_size
    if size > MAX_CHUNK_BYTES:
        raise RecordingError(f"a chunk claims {size} bytes; at most {MAX_CHUNK_BYTES} are unpacked")
    if chunk.compression == "zstd":
        data = _unzstd(chunk.data, size)
    elif chunk.compression == "":
        data = chunk.data
    else:
        raise RecordingError(f"a chunk is compressed with {chunk.compression[:20]!r} (only zstd is read)")
    if len(data) != size:
        raise RecordingError("a chunk unpacks to another size than it claims")
    if chunk.uncompressed_crc and zlib.crc32(data) != chunk.uncompressed_crc:
        raise RecordingError("a chunk's checksum does not match")
    stream = ReadDataStream(io.BytesIO(data))
    while stream.count < len(data):
        opcode = stream.read1()
        length = stream.read8()
        if length > len(data) - stream.count:
            raise RecordingError("a record inside a chunk runs past its end")
        body = stream.read(length)
        inner = ReadDataStream(io.BytesIO(body))
        if opcode == Opcode.CHANNEL:
            channel = Channel.read(inner)
            topics[channel.id] = channel.topic
        elif opcode == Opcode.MESSAGE:
            yield from _known(Message.read(inner, length), topics)


def _unzstd(data: bytes, size: int) -> bytes:
    """``data`` unpacked, reading at most ``size + 1`` bytes whatever its frame header claims."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
    parts: list[bytes] = []
    total = 0
    while total <= size:
        part = reader.read(min(1 << 20, size + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)
