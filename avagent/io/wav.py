"""WAV files in: checked before use, so that a bad file gets one clear line instead of a crash."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avagent.core.errors import InputError
from avagent.core.files import open_regular

SUPPORTED_SUBTYPES = {"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"}
_SCAN_BLOCK = 1 << 16

MIN_SAMPLE_RATE = 8_000
"""The lowest input sample rate accepted (Hz): below it there is no speech band to hear, and
resampling to 16 kHz would multiply the samples (a header claiming 1 Hz asks for 16,000 times)."""

MAX_SAMPLE_RATE = 192_000
"""The highest input sample rate accepted (Hz), the highest sound cards record at."""

MAX_CHANNELS = 64
"""The most channels a WAV input may have (an array of at most ``MAX_MICS`` microphones)."""

MAX_DURATION_S = 24 * 3600.0
"""The longest WAV input accepted: 24 hours. A run goes through every block, so the length of the
recording is the time the command takes."""

MAX_READ_SAMPLES = 1 << 28
"""The most samples read into memory at once (1 GiB as float32) by commands that need a whole
recording (``avagent vad``): about 4.6 hours of one channel at 16 kHz."""

MAX_CHUNKS = 1024
"""The most RIFF chunks looked at before the audio data; real files have a handful."""


@dataclass(frozen=True, slots=True)
class WavInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def inspect_wav(path: str | Path, *, scan_samples: bool = True) -> WavInfo:
    """Check that ``path`` is a complete, readable WAV file of finite samples, within the limits
    above (a regular file; rate, channels, length); raise ``InputError`` saying what is wrong
    otherwise."""
    p = Path(path)
    with open_regular(p) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(12)
    if size == 0:
        raise InputError(f"{p}: the file is empty")
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise InputError(f"{p}: not a WAV file (no RIFF/WAVE header)")
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile's message is the useful part
        raise InputError(f"{p}: cannot read as WAV: {_first_line(exc)}") from None
    if info.subtype not in SUPPORTED_SUBTYPES:
        raise InputError(
            f"{p}: unsupported sample format {info.subtype} (use 8/16/24/32-bit PCM or 32/64-bit float)"
        )
    rate, channels = int(info.samplerate), int(info.channels)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InputError(
            f"{p}: sample rate {rate} Hz is outside what is supported "
            f"({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)"
        )
    if channels > MAX_CHANNELS:
        raise InputError(f"{p}: {channels} channels; at most {MAX_CHANNELS} are supported")
    if info.frames == 0:
        raise InputError(f"{p}: the file holds no audio samples")
    if info.frames / rate > MAX_DURATION_S:
        raise InputError(
            f"{p}: {info.frames / rate / 3600:.1f} hours of audio; at most "
            f"{MAX_DURATION_S / 3600:g} hours are supported (split the recording)"
        )
    _check_complete(p, size, rate, channels)
    if scan_samples and info.subtype in ("FLOAT", "DOUBLE"):
        _check_finite(p, rate)
    return WavInfo(p, rate, channels, int(info.frames), str(info.subtype))


def read_wav(path: str | Path, *, channel: int | None = None) -> tuple[np.ndarray, int]:
    """The whole checked file as float32 ``(frames, channels)`` (or only ``channel``, as
    ``(frames,)``) and its sample rate; refused beyond ``MAX_READ_SAMPLES``."""
    info = inspect_wav(path)
    width = 1 if channel is not None else info.channels
    if info.frames * width > MAX_READ_SAMPLES:
        hours = MAX_READ_SAMPLES / width / info.sample_rate / 3600
        raise InputError(
            f"{info.path}: {info.duration / 3600:.1f} hours of audio is too much to hold at once "
            f"(at most {hours:.1f} hours of {width} channel(s) at {info.sample_rate} Hz)"
        )
    if channel is None:
        samples, rate = sf.read(str(info.path), dtype="float32", always_2d=True)
        return samples, int(rate)
    if not 0 <= channel < info.channels:
        raise InputError(f"{info.path}: has no channel {channel} ({info.channels} channel(s))")
    # Block by block, keeping one channel: memory for that channel alone.
    out = np.empty(info.frames, dtype=np.float32)
    done = 0
    with sf.SoundFile(str(info.path)) as f:
        for block in f.blocks(blocksize=_SCAN_BLOCK, dtype="float32", always_2d=True):
            n = min(block.shape[0], info.frames - done)
            out[done : done + n] = block[:n, channel]
            done += n
    return out[:done], info.sample_rate


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_complete(p: Path, size: int, rate: int, channels: int) -> None:
    """Compare the data chunk's declared size with the bytes really there."""
    with open_regular(p) as f:
        f.seek(12)
        for _ in range(MAX_CHUNKS):
            header = f.read(8)
            if len(header) < 8:
                return
            chunk_id, chunk_size = struct.unpack("<4sI", header)
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return  # written while streaming: the length was never filled in
                available = size - f.tell()
                if available < chunk_size:
                    block = max(1, channels) * _bytes_per_sample(p)
                    promised = chunk_size / block / rate
                    held = available / block / rate
                    raise InputError(
                        f"{p}: truncated: the header promises {promised:.2f} s of audio, "
                        f"the file holds {held:.2f} s"
                    )
                return
            f.seek(chunk_size + (chunk_size & 1), 1)
    raise InputError(f"{p}: more than {MAX_CHUNKS} chunks before the audio data; not a usable WAV file")


def _bytes_per_sample(p: Path) -> int:
    subtype = sf.info(str(p)).subtype
    return {
        "PCM_U8": 1,
        "ULAW": 1,
        "ALAW": 1,
        "PCM_16": 2,
        "PCM_24": 3,
        "PCM_32": 4,
        "FLOAT": 4,
        "DOUBLE": 8,
    }.get(subtype, 2)


def _check_finite(p: Path, rate: int) -> None:
    with sf.SoundFile(str(p)) as f:
        position = 0
        for block in f.blocks(blocksize=_SCAN_BLOCK, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                bad = int(np.argmax(~np.isfinite(block).all(axis=1)))
                raise InputError(f"{p}: NaN or infinite samples at {(position + bad) / rate:.3f} s")
            position += block.shape[0]
