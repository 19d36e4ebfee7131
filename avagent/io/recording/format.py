"""What a recording holds, channel by channel, and how each message is encoded.

One MCAP file per session. Every message's log time is its media time (nanoseconds from the start
of the input), so a viewer such as Foxglove lays the channels out on one timeline:

| channel | encoding | one message |
| --- | --- | --- |
| ``/audio/in`` | ``avagent.pcm`` | one block of the input, all channels, at its own rate |
| ``/audio/out`` | ``avagent.pcm`` | one block of the agent's voice (mono; silence left out) |
| ``/video`` | JSON, ``foxglove.CompressedImage`` | one camera or call frame as JPEG |
| ``/events`` | JSON | one event of the event contract (docs/events.md) |
| ``/tools`` | JSON | one tool call with its result |
| ``/model`` | JSON | one request to the policy's model and the answer it streamed |

A PCM block is a 16-byte little-endian header (sample format, 0, channels, sample rate, media time
of the first sample as a double) followed by the interleaved samples. Float input that is exactly
16-bit (what a WAV file of 16-bit samples gives) is stored as 16-bit and read back bit for bit.
The configuration (secrets left out) and the versions are the file's ``avagent`` metadata.

A recording is input from outside when it is read back: every decoder here checks sizes, rates
and shapes against the limits below and raises ``RecordingError`` with one line.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from avagent.core.errors import InputError
from avagent.io.wav import MAX_CHANNELS, MAX_DURATION_S, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

AUDIO_IN = "/audio/in"
AUDIO_OUT = "/audio/out"
VIDEO = "/video"
EVENTS = "/events"
TOOLS = "/tools"
MODEL = "/model"
TOPICS = (AUDIO_IN, AUDIO_OUT, VIDEO, EVENTS, TOOLS, MODEL)

PCM_ENCODING = "avagent.pcm"
METADATA_NAME = "avagent"
FORMAT_VERSION = "1"

MAX_RECORD_BYTES = 64 << 20
"""The largest record read from a file (a chunk holds about a second of the session)."""
MAX_CHUNK_BYTES = 64 << 20
"""The most bytes one chunk may unpack to; a chunk claiming more is not unpacked."""
MAX_BLOCK_S = 1.0
"""The longest audio block one message may hold."""
MAX_JPEG_BYTES = 8 << 20
MAX_IMAGE_SIDE = 4096
"""A video frame wider or taller than this is refused before it is decoded."""
MAX_JSON_BYTES = 1 << 20
"""The largest event or tool message."""
MAX_MODEL_BYTES = 16 << 20
"""The largest model exchange (a request with its history, and the answer)."""
MAX_KEPT_BYTES = 256 << 20
"""Events, tool results and model exchanges held in memory to replay one recording."""
MAX_RECORDING_S = MAX_DURATION_S
"""The longest recording replayed (24 hours), as for a WAV file."""

_PCM_HEADER = struct.Struct("<BBHId")
_S16, _F32, _S16_OF_F32 = 1, 2, 3
_WIDTH = {_S16: 2, _F32: 4, _S16_OF_F32: 2}

PCM_LAYOUT = "header <BBHId: format (1 s16, 2 f32, 3 f32 stored as s16), 0, channels, rate, t; then samples"

COMPRESSED_IMAGE_SCHEMA = {
    "title": "foxglove.CompressedImage",
    "type": "object",
    "properties": {
        "timestamp": {
            "type": "object",
            "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}},
        },
        "frame_id": {"type": "string"},
        "data": {"type": "string", "contentEncoding": "base64"},
        "format": {"type": "string"},
    },
}
EVENT_SCHEMA = {"title": "avagent event", "type": "object", "properties": {"type": {"type": "string"}}}


class RecordingError(InputError):
    """A recording, or one message of it, cannot be used; the message says why, on one line."""


def nanoseconds(t: float) -> int:
    """A media time as an MCAP log time."""
    return max(0, round(t * 1e9))


@dataclass(frozen=True, slots=True)
class AudioBlock:
    samples: np.ndarray
    """``(frames, channels)``, int16 or float32, as it was published."""
    sample_rate: int
    t: float

    @property
    def duration(self) -> float:
        return int(self.samples.shape[0]) / self.sample_rate


def _exact_int16(samples: np.ndarray) -> np.ndarray | None:
    """``samples`` (float32) as int16 when that loses nothing, else None."""
    scaled = samples * np.float32(32768.0)
    # One cast and one comparison (this runs for every block): a fraction, a value out of range
    # (1.0 gives 32768, which no int16 holds) or NaN does not survive the round trip.
    with np.errstate(invalid="ignore"):
        as_int = scaled.astype(np.int16)
    return as_int if bool((as_int == scaled).all()) else None


def encode_audio(samples: np.ndarray, sample_rate: int, t: float) -> bytes:
    """One PCM message for ``samples`` (``(frames, channels)`` or mono ``(frames,)``)."""
    block = samples.reshape(-1, 1) if samples.ndim == 1 else samples
    if block.dtype == np.int16:
        code, data = _S16, block
    else:
        exact = _exact_int16(block.astype(np.float32, copy=False))
        code, data = (_S16_OF_F32, exact) if exact is not None else (_F32, block.astype(np.float32))
    header = _PCM_HEADER.pack(code, 0, int(block.shape[1]), int(sample_rate), float(t))
    dtype = "<i2" if code != _F32 else "<f4"
    return header + np.ascontiguousarray(data, dtype=dtype).tobytes()


def decode_audio(data: bytes) -> AudioBlock:
    """The block a PCM message holds, checked against the limits."""
    if len(data) < _PCM_HEADER.size:
        raise RecordingError("an audio message is shorter than its header")
    code, _zero, channels, rate, t = _PCM_HEADER.unpack_from(data)
    if code not in _WIDTH:
        raise RecordingError(f"an audio message has an unknown sample format ({code})")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise RecordingError(
            f"an audio message's rate {rate} Hz is outside {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise RecordingError(
            f"an audio message has {channels} channels; at most {MAX_CHANNELS} are supported"
        )
    if not (np.isfinite(t) and 0.0 <= t <= MAX_RECORDING_S):
        raise RecordingError("an audio message's time is not a time within 24 hours")
    payload = len(data) - _PCM_HEADER.size
    width = _WIDTH[code] * channels
    if payload % width:
        raise RecordingError("an audio message holds a part of a sample")
    frames = payload // width
    if frames > MAX_BLOCK_S * rate:
        raise RecordingError(f"an audio message holds more than {MAX_BLOCK_S:g} s")
    raw = np.frombuffer(data, dtype="<f4" if code == _F32 else "<i2", offset=_PCM_HEADER.size)
    samples = raw.reshape(frames, channels)
    if code == _S16:
        samples = samples.astype(np.int16)
    elif code == _S16_OF_F32:
        samples = samples.astype(np.float32) * np.float32(1.0 / 32768.0)
    else:
        samples = samples.astype(np.float32)
        if not np.isfinite(samples).all():
            raise RecordingError("an audio message holds NaN or infinite samples")
    return AudioBlock(samples, int(rate), float(t))


def encode_video(image: np.ndarray, t: float, quality: int) -> bytes:
    """One ``foxglove.CompressedImage`` message (JSON) holding ``image`` (BGR) as JPEG."""
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("the frame could not be encoded as JPEG")
    ns = nanoseconds(t)
    message = {
        "timestamp": {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000},
        "frame_id": "camera",
        "format": "jpeg",
        "data": base64.b64encode(jpeg.tobytes()).decode("ascii"),
    }
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def decode_video(data: bytes) -> tuple[float, bytes]:
    """The media time and the JPEG bytes of a video message (not yet decoded)."""
    if len(data) > MAX_JPEG_BYTES * 4 // 3 + 4096:
        raise RecordingError(f"a video message is larger than {MAX_JPEG_BYTES >> 20} MiB of JPEG")
    message = decode_json(data, len(data), "video")
    stamp = message.get("timestamp")
    encoded = message.get("data")
    if not isinstance(stamp, dict) or not isinstance(encoded, str):
        raise RecordingError("a video message has no timestamp or no data")
    sec, nsec = stamp.get("sec"), stamp.get("nsec")
    if not isinstance(sec, int) or not isinstance(nsec, int) or not 0 <= sec <= MAX_RECORDING_S:
        raise RecordingError("a video message's timestamp is not a time within 24 hours")
    if message.get("format") not in ("jpeg", "jpg"):
        raise RecordingError(f"a video message is {str(message.get('format'))[:20]!r}, not JPEG")
    try:
        jpeg = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RecordingError("a video message's data is not base64") from None
    return sec + nsec / 1e9, jpeg


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """The BGR image of a JPEG, its size checked (from the header) before it is decoded."""
    width, height = jpeg_size(jpeg)
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        raise RecordingError(f"a video frame is {width}x{height}; at most {MAX_IMAGE_SIDE} a side")
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RecordingError("a video frame is not a readable JPEG")
    return np.ascontiguousarray(image)


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's start-of-frame marker."""
    if jpeg[:2] != b"\xff\xd8":
        raise RecordingError("a video frame is not a JPEG")
    i = 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            raise RecordingError("a video frame is not a well-formed JPEG")
        marker = jpeg[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and i + 9 <= len(jpeg):
            height = int.from_bytes(jpeg[i + 5 : i + 7], "big")
            width = int.from_bytes(jpeg[i + 7 : i + 9], "big")
            return width, height
        if length < 2:
            break
        i += 2 + length
    raise RecordingError("a video frame's JPEG has no size")


def encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_json(data: bytes, limit: int, what: str) -> dict[str, Any]:
    """A JSON object of at most ``limit`` bytes."""
    if len(data) > limit:
        raise RecordingError(f"a {what} message is larger than {limit >> 10} KiB")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise RecordingError(f"a {what} message is not JSON") from None
    if not isinstance(value, dict):
        raise RecordingError(f"a {what} message is not a JSON object")
    return value


def channel_schema(topic: str) -> tuple[str, str, bytes]:
    """The schema of ``topic``'s channel: name, encoding, data (empty name: no schema)."""
    if topic == VIDEO:
        return "foxglove.CompressedImage", "jsonschema", encode_json(COMPRESSED_IMAGE_SCHEMA)
    if topic in (EVENTS, TOOLS, MODEL):
        names = {EVENTS: "avagent.Event", TOOLS: "avagent.ToolCall", MODEL: "avagent.ModelExchange"}
        return names[topic], "jsonschema", encode_json(EVENT_SCHEMA | {"title": names[topic]})
    return "", "", b""


def message_encoding(topic: str) -> str:
    return PCM_ENCODING if topic in (AUDIO_IN, AUDIO_OUT) else "json"
